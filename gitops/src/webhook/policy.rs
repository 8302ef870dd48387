//! Which webhook targets the controller may reach: the pure half of the SSRF guard.
//!
//! A GitSync's author chooses the webhook URL, and the controller sends from inside the
//! cluster, so an unguarded webhook lets any tenant make the controller POST to the cloud
//! metadata service (169.254.169.254: instance credentials), to a sidecar on loopback, or to the
//! API server with whatever the pod can reach. Refused unless a flag allows them:
//! - loopback (127.0.0.0/8, ::1): `--webhook-allow-targets=loopback`;
//! - link-local (169.254.0.0/16, fe80::/10, and AWS's IPv6 metadata address fd00:ec2::254):
//!   `--webhook-allow-targets=link-local`;
//! - the API server's own address (host and port of the controller's kubeconfig, and the
//!   in-cluster `KUBERNETES_SERVICE_HOST:PORT`): `--webhook-allow-targets=api-server`;
//! - plain `http://`: `--webhook-allow-http`.
//!
//! Always refused: unspecified (0.0.0.0, ::), multicast and broadcast addresses. Private
//! ranges (10/8, 172.16/12, 192.168/16, ULA) stay allowed: in-cluster receivers and chat
//! relays live there; a NetworkPolicy on the controller's egress is the tool to narrow them.
//!
//! The check runs twice: when a GitSync is reconciled (so a refusal shows as a condition) and
//! on every connection, against the addresses the host resolves to at that moment (so a DNS
//! answer that changes after the check cannot point the delivery elsewhere).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Classes of address a flag can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guarded {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16, fe80::/10, fd00:ec2::254.
    LinkLocal,
    /// The API server's own host and port.
    ApiServer,
}

impl Guarded {
    /// The flag value that allows it.
    pub fn flag_value(self) -> &'static str {
        match self {
            Guarded::Loopback => "loopback",
            Guarded::LinkLocal => "link-local",
            Guarded::ApiServer => "api-server",
        }
    }

    /// Parses a flag value.
    pub fn parse(text: &str) -> Result<Guarded, String> {
        match text.trim() {
            "loopback" => Ok(Guarded::Loopback),
            "link-local" => Ok(Guarded::LinkLocal),
            "api-server" => Ok(Guarded::ApiServer),
            other => Err(format!(
                "{other:?}: expected loopback, link-local or api-server"
            )),
        }
    }
}

/// What the controller may reach.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    /// Classes allowed by `--webhook-allow-targets`.
    pub allowed: Vec<Guarded>,
    /// `--webhook-allow-http`.
    pub allow_http: bool,
    /// The API server's addresses.
    pub api_server: Vec<SocketAddr>,
}

/// A webhook URL split into what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTarget {
    /// `https` or `http`.
    pub https: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (default of the scheme when absent).
    pub port: u16,
}

/// Parses and checks the scheme. Messages name the scheme and host, never the path or query,
/// which often carry the credential (Slack's URLs do).
pub fn parse_target(address: &str, policy: &TargetPolicy) -> Result<ParsedTarget, String> {
    let uri: http::Uri = address
        .parse()
        .map_err(|_| "the webhook address is not a URL".to_string())?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if policy.allow_http => false,
        Some("http") => {
            return Err(
                "the webhook address uses http://; only https:// is allowed (controller flag --webhook-allow-http)"
                    .into(),
            );
        }
        _ => return Err("the webhook address must start with https://".into()),
    };
    let host = uri
        .host()
        .ok_or("the webhook address has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err("the webhook address has no host".into());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(
            "the webhook address must not carry user information (use the token key)".into(),
        );
    }
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok(ParsedTarget { https, host, port })
}

/// Why an address is refused, or `None` when it may be reached.
pub fn refusal(addr: SocketAddr, policy: &TargetPolicy) -> Option<String> {
    let ip = canonical(addr.ip());
    let always = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if always {
        return Some(format!("{ip} is not an address a webhook may use"));
    }
    let allowed = |class: Guarded| policy.allowed.contains(&class);
    let class = if policy
        .api_server
        .iter()
        .any(|api| canonical(api.ip()) == ip && api.port() == addr.port())
    {
        Some((Guarded::ApiServer, "the API server's own address"))
    } else if ip.is_loopback() {
        Some((Guarded::Loopback, "a loopback address"))
    } else if is_link_local(ip) {
        Some((
            Guarded::LinkLocal,
            "a link-local address (where cloud metadata services live)",
        ))
    } else {
        None
    };
    match class {
        Some((class, what)) if !allowed(class) => Some(format!(
            "{ip} is {what}; refused unless the controller runs with --webhook-allow-targets={}",
            class.flag_value()
        )),
        _ => None,
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:169.254.169.254`) are judged as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == AWS_METADATA_V6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn metadata_loopback_and_the_api_server_are_refused_by_default() {
        let policy = TargetPolicy {
            api_server: vec![addr("10.96.0.1:443")],
            ..TargetPolicy::default()
        };
        for refused in [
            "169.254.169.254:80",
            "[::ffff:169.254.169.254]:80",
            "[fe80::1]:443",
            "[fd00:ec2::254]:80",
            "127.0.0.1:8080",
            "[::1]:443",
            "10.96.0.1:443",
            "0.0.0.0:443",
            "255.255.255.255:443",
            "224.0.0.1:443",
        ] {
            assert!(refusal(addr(refused), &policy).is_some(), "{refused}");
        }
        for allowed in ["10.96.0.1:8443", "10.0.0.7:443", "93.184.215.14:443"] {
            assert_eq!(refusal(addr(allowed), &policy), None, "{allowed}");
        }
        let why = refusal(addr("169.254.169.254:80"), &policy).unwrap();
        assert!(why.contains("link-local") && why.contains("--webhook-allow-targets=link-local"));
    }

    #[test]
    fn flags_allow_each_class_on_its_own() {
        let policy = TargetPolicy {
            allowed: vec![Guarded::Loopback],
            allow_http: true,
            api_server: vec![addr("127.0.0.1:6443")],
        };
        assert_eq!(refusal(addr("127.0.0.1:8080"), &policy), None);
        assert!(
            refusal(addr("127.0.0.1:6443"), &policy).is_some(),
            "API server"
        );
        assert!(refusal(addr("169.254.169.254:80"), &policy).is_some());
        assert_eq!(Guarded::parse("link-local"), Ok(Guarded::LinkLocal));
        assert!(Guarded::parse("everything").is_err());
    }

    #[test]
    fn urls_must_be_https_without_credentials_and_errors_hide_the_path() {
        let strict = TargetPolicy::default();
        let parsed =
            parse_target("https://hooks.example.com/services/T0/B0/secret", &strict).unwrap();
        assert_eq!(
            parsed,
            ParsedTarget {
                https: true,
                host: "hooks.example.com".into(),
                port: 443
            }
        );
        let err = parse_target("http://hooks.example.com/services/secret", &strict).unwrap_err();
        assert!(
            err.contains("--webhook-allow-http") && !err.contains("secret"),
            "{err}"
        );
        assert!(parse_target("ftp://x/y", &strict).is_err());
        assert!(parse_target("https://user:pw@x/y", &strict).is_err());
        let lax = TargetPolicy {
            allow_http: true,
            ..TargetPolicy::default()
        };
        assert_eq!(
            parse_target("http://[::1]:9000/hook", &lax).unwrap().host,
            "::1"
        );
    }
}
