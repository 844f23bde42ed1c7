// A form rendered from the catalog's JSON Schema and uiSchema by react-jsonschema-form,
// validated in the browser (Ajv) and again by the API, whose violations (JSON pointers
// into the fields) are shown next to the fields they name.

import Form from '@rjsf/core';
import validator from '@rjsf/validator-ajv8';
import { useMemo, useState } from 'react';

import { Problem } from './ui.jsx';

/** Ajv's messages, in words a requester understands (`stack` is what the list shows). */
export function transformErrors(errors) {
  return errors
    .filter((e) => e.name !== 'if')
    .map((e) => {
      const message = friendly(e);
      const name = e.name === 'required' ? e.params.missingProperty : (e.property || '').replace(/^\./, '');
      const title = e.title || name;
      return { ...e, message, stack: title ? `${title}: ${message}` : message };
    });
}

function friendly(e) {
  switch (e.name) {
    case 'required':
      return 'is required';
    case 'type':
      return `must be filled in with a ${e.params.type}`;
    case 'pattern':
      return `does not have the expected format (${e.params.pattern})`;
    case 'const':
      return `must be ${JSON.stringify(e.params.allowedValue)} here`;
    case 'enum':
      return `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'minItems':
      return `needs at least ${e.params.limit} entr${e.params.limit === 1 ? 'y' : 'ies'}`;
    case 'minimum':
      return `must be at least ${e.params.limit}`;
    case 'maximum':
      return `must be at most ${e.params.limit}`;
    default:
      return e.message;
  }
}

/** The list above the form: what to fix, announced to screen readers. */
function ErrorList({ errors }) {
  return (
    <div className="errors" role="alert">
      <h3>Please correct {errors.length === 1 ? 'this' : `these ${errors.length}`}</h3>
      <ul>
        {errors.map((e, i) => (
          <li key={i}>{String(e.stack).replace(/^\./, '')}</li>
        ))}
      </ul>
    </div>
  );
}

/** The API's violations as react-jsonschema-form's error schema. */
export function serverErrors(problem) {
  const errors = {};
  for (const e of problem?.errors || []) {
    if (!e || typeof e.pointer !== 'string') continue;
    const path = e.pointer
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (path[0] === 'fields') path.shift();
    let node = errors;
    for (const key of path) {
      node[key] = node[key] || {};
      node = node[key];
    }
    node.__errors = [...(node.__errors || []), e.message];
  }
  return errors;
}

/**
 * The form of an item or bundle (`form: {schema, uiSchema}` from the catalog API).
 * `onSubmit(fields)` returns a promise; a rejection with an API problem is shown.
 */
export function RequestForm({ form, initial, submitLabel = 'Submit request', onSubmit }) {
  const [fields, setFields] = useState(initial || {});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const extraErrors = useMemo(() => (error ? serverErrors(error.problem) : undefined), [error]);
  const uiSchema = useMemo(
    () => ({ ...(form.uiSchema || {}), 'ui:submitButtonOptions': { submitText: submitLabel, props: { disabled: busy } } }),
    [form.uiSchema, submitLabel, busy],
  );

  const submit = async ({ formData }) => {
    setBusy(true);
    setError(null);
    try {
      await onSubmit(formData);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  // The schema's own title and description are the page's already.
  const schema = useMemo(() => {
    const { title: _title, description: _description, ...rest } = form.schema;
    return rest;
  }, [form.schema]);

  return (
    <div className="request-form">
      <Form
        schema={schema}
        uiSchema={uiSchema}
        formData={fields}
        validator={validator}
        onChange={(e) => setFields(e.formData)}
        onSubmit={submit}
        // The errors are on the page; rjsf's default also logs them to the console.
        onError={() => {}}
        transformErrors={transformErrors}
        extraErrors={extraErrors}
        showErrorList="top"
        templates={{ ErrorListTemplate: ErrorList }}
        focusOnFirstError
        noHtml5Validate
        // A `const` in a conditional branch is a rule to check, not a value to put in
        // silently (the schema's own defaults still apply).
        experimental_defaultFormStateBehavior={{ constAsDefaults: 'never' }}
      />
      <Problem error={error} />
    </div>
  );
}
