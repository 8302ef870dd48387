//! TEMPORARY placeholder until the metrics module lands (being written in parallel).
/// Metrics.
#[derive(Debug, Default)]
pub struct Metrics;
impl Metrics {
    /// New.
    pub fn new(_revision: &str) -> Self {
        Self
    }
    /// +1 request.
    pub fn unseal_request(&self) {}
    /// +1 error.
    pub fn unseal_error(&self, _reason: &str, _namespace: &str) {}
    /// Condition gauge.
    pub fn set_condition(&self, _ns: &str, _name: &str, _instance: &str, _value: i64) {}
    /// Remove gauge.
    pub fn remove_condition(&self, _ns: &str, _name: &str) {}
}
