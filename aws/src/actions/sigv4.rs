//! AWS Signature Version 4 for `rest` actions (`auth: {awsSigv4: {service, region}}`),
//! with the AWS SDK's own signing crate and the SDK's credentials (the Lambda's role, or
//! local mode's).

use std::time::SystemTime;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use shared::fulfillment::actions::{ActionError, AwsSigner};

pub struct Sigv4Signer {
    sdk: SdkConfig,
}

impl Sigv4Signer {
    pub fn new(sdk: SdkConfig) -> Self {
        Sigv4Signer { sdk }
    }
}

#[async_trait]
impl AwsSigner for Sigv4Signer {
    async fn sign(
        &self,
        request: &mut reqwest::Request,
        service: &str,
        region: Option<&str>,
    ) -> Result<(), ActionError> {
        let region = region
            .map(str::to_owned)
            .or_else(|| self.sdk.region().map(|r| r.to_string()))
            .ok_or_else(|| ActionError::permanent("auth.awsSigv4: no region to sign for"))?;
        let provider = self.sdk.credentials_provider().ok_or_else(|| {
            ActionError::permanent("auth.awsSigv4: the deployment has no AWS credentials")
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            ActionError::retryable(format!("auth.awsSigv4: no AWS credentials now: {e}"))
        })?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ActionError::permanent(format!("auth.awsSigv4: {e}")))?
            .into();
        let body = request
            .body()
            .map(|b| b.as_bytes().unwrap_or_default())
            .unwrap_or_default()
            .to_vec();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| ActionError::permanent(format!("auth.awsSigv4: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ActionError::permanent(format!("auth.awsSigv4: {e}")))?
            .into_parts();
        for (name, value) in instructions.headers() {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ActionError::permanent(format!("auth.awsSigv4: {e}")))?;
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|e| ActionError::permanent(format!("auth.awsSigv4: {e}")))?;
            value.set_sensitive(true);
            request.headers_mut().insert(name, value);
        }
        Ok(())
    }
}
