//! Printing findings for people and for CI systems: text (one `path:line: severity rule:
//! message` line each, like compilers, so editors and CI logs link them), JSON, SARIF 2.1.0
//! (GitHub code scanning) and JUnit XML (test report widgets of GitLab, Jenkins, Azure).
//!
//! Only what the findings hold is printed; findings never hold values.

use std::{collections::BTreeSet, fmt::Write as _};

use serde_json::{Value, json};

use super::findings::{ALL_RULES, Finding, Location, Severity};

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// `path:line: severity rule-id: message`, one per line.
    Text,
    /// One JSON object with every finding.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// JUnit XML, for CI test reports.
    Junit,
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Findings, sorted by file and line, without duplicates.
    pub findings: Vec<Finding>,
    /// Files and kustomizations that were checked (for JUnit's passing test cases).
    pub checked: Vec<String>,
}

impl Report {
    /// Sorts and removes duplicates (a base included by several overlays is reported once).
    pub fn new(mut findings: Vec<Finding>, mut checked: Vec<String>) -> Self {
        findings.sort();
        findings.dedup();
        checked.sort();
        checked.dedup();
        Self { findings, checked }
    }

    /// Number of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// One line for stderr.
    pub fn summary(&self) -> String {
        let errors = self.count(Severity::Error);
        let warnings = self.count(Severity::Warning);
        format!(
            "kubeseal lint: {errors} {}, {warnings} {} ({} {} checked)",
            plural(errors, "error", "errors"),
            plural(warnings, "warning", "warnings"),
            self.checked.len(),
            plural(self.checked.len(), "source", "sources"),
        )
    }

    /// The report in `format`.
    pub fn render(&self, format: ReportFormat) -> String {
        match format {
            ReportFormat::Text => self.text(),
            ReportFormat::Json => pretty(&self.json()),
            ReportFormat::Sarif => pretty(&self.sarif()),
            ReportFormat::Junit => self.junit(),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{}: {} {}: {}",
                f.location, f.severity, f.rule, f.message
            );
            for r in &f.related {
                let _ = writeln!(out, "    {}: note: {}", r.location, r.message);
            }
        }
        out
    }

    fn json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "rule": f.rule,
                    "severity": f.severity.to_string(),
                    "file": f.location.file,
                    "line": f.location.line,
                    "message": f.message,
                    "related": f.related.iter().map(|r| json!({
                        "file": r.location.file,
                        "line": r.location.line,
                        "message": r.message,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "tool": "kubeseal lint",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": {
                "errors": self.count(Severity::Error),
                "warnings": self.count(Severity::Warning),
                "checked": self.checked.len(),
            },
            "findings": findings,
        })
    }

    fn sarif(&self) -> Value {
        let rules: Vec<Value> = ALL_RULES
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "name": r.id,
                    "shortDescription": {"text": r.summary},
                    "fullDescription": {"text": r.summary},
                    "help": {"text": r.help},
                    "defaultConfiguration": {"level": sarif_level(r.severity)},
                    "properties": {"tags": ["security", "kubernetes", "sealed-secrets"]},
                })
            })
            .collect();
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let index = ALL_RULES.iter().position(|r| r.id == f.rule);
                let related: Vec<Value> = f
                    .related
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        json!({
                            "id": i + 1,
                            "physicalLocation": physical_location(&r.location),
                            "message": {"text": r.message},
                        })
                    })
                    .collect();
                let mut result = json!({
                    "ruleId": f.rule,
                    "level": sarif_level(f.severity),
                    "message": {"text": f.message},
                    "locations": [{"physicalLocation": physical_location(&f.location)}],
                });
                if let Some(index) = index {
                    result["ruleIndex"] = json!(index);
                }
                if !related.is_empty() {
                    result["relatedLocations"] = Value::Array(related);
                }
                result
            })
            .collect();
        json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "kubeseal-lint",
                    "informationUri": "https://github.com/sealed-secrets-rs/sealed-secrets-rs",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }},
                "results": results,
            }],
        })
    }

    fn junit(&self) -> String {
        let failures = self.count(Severity::Error);
        let with_findings: BTreeSet<&str> = self
            .findings
            .iter()
            .map(|f| f.location.file.as_str())
            .collect();
        let clean: Vec<&String> = self
            .checked
            .iter()
            .filter(|c| !with_findings.contains(c.as_str()))
            .collect();
        let tests = self.findings.len() + clean.len();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"kubeseal lint\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"kubeseal lint\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">"
        );
        for f in &self.findings {
            let name = format!("{} {}", f.rule, f.location);
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\">",
                xml(&f.location.file),
                xml(&name)
            );
            let mut body = format!("{}: {} {}: {}", f.location, f.severity, f.rule, f.message);
            for r in &f.related {
                let _ = write!(body, "\n    {}: note: {}", r.location, r.message);
            }
            match f.severity {
                Severity::Error => {
                    let _ = write!(
                        out,
                        "<failure type=\"{}\" message=\"{}\">{}</failure>",
                        xml(f.rule),
                        xml(&f.message),
                        xml(&body)
                    );
                }
                Severity::Warning => {
                    let _ = write!(out, "<system-out>{}</system-out>", xml(&body));
                }
            }
            out.push_str("</testcase>\n");
        }
        for file in clean {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{0}\" name=\"{0}\"/>",
                xml(file)
            );
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn physical_location(location: &Location) -> Value {
    let mut value = json!({"artifactLocation": {"uri": sarif_uri(&location.file)}});
    if let Some(line) = location.line {
        value["region"] = json!({"startLine": line});
    }
    value
}

/// A relative path as a URI reference (relative to the checkout, as code scanning expects);
/// absolute paths become `file://` URIs.
fn sarif_uri(path: &str) -> String {
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(b));
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c < ' ' && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::findings::{Finding, RAW_SECRET};

    fn report() -> Report {
        let finding = Finding::new(RAW_SECRET, Location::new("dir a/s.yaml", Some(3)), "x < y")
            .with_related(Location::new("k.yaml", None), "here");
        Report::new(
            vec![finding.clone(), finding],
            vec!["dir a/s.yaml".into(), "ok.yaml".into()],
        )
    }

    #[test]
    fn duplicates_are_removed_and_text_has_compiler_layout() {
        let r = report();
        assert_eq!(r.findings.len(), 1);
        assert_eq!(
            r.render(ReportFormat::Text),
            "dir a/s.yaml:3: error raw-secret: x < y\n    k.yaml: note: here\n"
        );
    }

    #[test]
    fn sarif_has_rules_results_and_encoded_uris() {
        let v: Value = serde_json::from_str(&report().render(ReportFormat::Sarif)).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let result = &v["runs"][0]["results"][0];
        assert_eq!(result["ruleId"], "raw-secret");
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "dir%20a/s.yaml"
        );
        assert_eq!(
            result["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            v["runs"][0]["tool"]["driver"]["rules"][index]["id"],
            "raw-secret"
        );
    }

    #[test]
    fn junit_escapes_and_lists_clean_sources() {
        let x = report().render(ReportFormat::Junit);
        assert!(x.contains("failures=\"1\""), "{x}");
        assert!(x.contains("x &lt; y"), "{x}");
        assert!(
            x.contains("<testcase classname=\"ok.yaml\" name=\"ok.yaml\"/>"),
            "{x}"
        );
    }
}
