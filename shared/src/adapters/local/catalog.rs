//! The catalog in local mode: the snapshot loaded from the catalog directory, held in
//! memory and swapped whole on reload.

use std::sync::{Arc, RwLock};

use crate::catalog::snapshot::CatalogSnapshot;
use crate::ports::CatalogStore;

pub struct LocalCatalog {
    current: RwLock<Arc<CatalogSnapshot>>,
}

impl LocalCatalog {
    pub fn new(snapshot: CatalogSnapshot) -> Self {
        LocalCatalog {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// Serves `snapshot` from now on; requests in flight keep the one they started with.
    pub fn replace(&self, snapshot: CatalogSnapshot) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    }
}

impl CatalogStore for LocalCatalog {
    fn current(&self) -> Arc<CatalogSnapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
