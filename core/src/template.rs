//! PLACEHOLDER until the Go text/template engine lands (being written in parallel).
use std::collections::BTreeMap;
/// Template error.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// Not yet.
    #[error("template: {0}: templates are not supported yet")]
    Unsupported(String),
}
/// Supported functions.
pub const SUPPORTED_FUNCTIONS: &[&str] = &[];
/// Renders.
pub fn render(
    name: &str,
    _template: &str,
    _values: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>, TemplateError> {
    Err(TemplateError::Unsupported(name.to_string()))
}
