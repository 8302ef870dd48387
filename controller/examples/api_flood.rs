//! Replays issue 12's flood against the controller's HTTP API and measures what it costs.
//!
//! The flood: `API_FLOOD_CONNECTIONS` (8) keep-alive connections POST, for
//! `API_FLOOD_SECONDS` (15 s) and at most `API_FLOOD_MAX_REQUESTS` (50,000) requests each, a
//! SealedSecret of `API_FLOOD_ITEMS` (3,000) items that no registered key opens (about 2 MiB),
//! alternately to `/v1/verify` and `/v1/rotate`, with a new `X-Forwarded-For` on every
//! request. Meanwhile a prober opens a new connection every 100 ms for `GET /healthz`, as a
//! kubelet does. At the end it prints the answers by status, the slowest and the median
//! `/healthz` probe, and the server's peak resident memory (`VmHWM`).
//!
//! Two targets:
//! - **in process** (default): the controller's own router, built as `controller` builds it
//!   (`api_router` + `with_timeouts` + the peer address), on 127.0.0.1 with a fresh RSA-4096
//!   key in a real key ring. `API_FLOOD_RATE_LIMIT` and `API_FLOOD_RATE_LIMIT_BURST` set the
//!   limiter (default: upstream's 2/s, burst 2); the other settings are the controller's
//!   defaults. The peak memory is this process's, client included (the client holds one body).
//! - **a running controller**: `API_FLOOD_URL=http://127.0.0.1:PORT` and
//!   `API_FLOOD_PID=<controller pid>` (loopback only); `bench/api-flood.sh` starts one.
//!
//! Run: `cargo run --release -p sealed-secrets-controller --example api_flood` (Linux: reads
//! /proc). Everything listens on, and connects to, 127.0.0.1 only.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use sealed_secrets_controller::{
    http::{HttpConfig, KeyService, Timeouts, api_router, with_timeouts},
    keyring::{KeyRing, key_from_secret},
    metrics::Metrics,
};
use sealed_secrets_core::{
    crypto::SystemRandom,
    key_secret::{KeyOrder, new_key_secret},
    keys::generate_key_pair,
    scope::Scope,
    seal::{NamespaceDefault, SealOptions, seal_secret, secret_from_value},
};
use serde_json::{Value, json};

/// How often `/healthz` is probed.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// A probe slower than this counts as failed (a kubelet's default probe timeout is 1 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Socket timeouts of the flood connections (the server's write timeout is 2 min).
const IO_TIMEOUT: Duration = Duration::from_secs(150);

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a number")),
        Err(_) => Ok(default),
    }
}

struct Settings {
    connections: usize,
    seconds: u64,
    max_requests: usize,
    items: usize,
    rate_limit: f64,
    rate_limit_burst: u32,
}

fn main() -> Result<()> {
    let settings = Settings {
        connections: env_number("API_FLOOD_CONNECTIONS", 8)?,
        seconds: env_number("API_FLOOD_SECONDS", 15)?,
        max_requests: env_number("API_FLOOD_MAX_REQUESTS", 50_000)?,
        items: env_number("API_FLOOD_ITEMS", 3000)?,
        rate_limit: env_number("API_FLOOD_RATE_LIMIT", 2.0)?,
        rate_limit_burst: env_number("API_FLOOD_RATE_LIMIT_BURST", 2)?,
    };
    ensure!(
        settings.seconds <= 600 && settings.connections <= 64,
        "the flood is bounded: at most 600 s and 64 connections"
    );
    let body = Arc::new(flood_body(settings.items)?);
    eprintln!("body: {} items, {} bytes", settings.items, body.len());

    let (addr, pid, _server) = match std::env::var("API_FLOOD_URL") {
        Ok(url) => {
            let addr = loopback_address(&url)?;
            let pid: u32 = std::env::var("API_FLOOD_PID")
                .context("API_FLOOD_PID (the controller's pid) is required with API_FLOOD_URL")?
                .parse()
                .context("API_FLOOD_PID is not a pid")?;
            (addr, pid, None)
        }
        Err(_) => {
            let server = InProcess::start(&settings)?;
            (server.addr, std::process::id(), Some(server))
        }
    };
    let before = peak_rss_kib(pid)?;
    eprintln!("target {addr}, pid {pid}, peak RSS before the flood {before} KiB");

    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || probe_healthz(addr, &stop))
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let tally = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let workers: Vec<_> = (0..settings.connections)
        .map(|connection| {
            let (body, tally) = (Arc::clone(&body), Arc::clone(&tally));
            let max_requests = settings.max_requests;
            thread::spawn(move || flood(addr, connection, &body, deadline, max_requests, &tally))
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a flood thread panicked"))?;
    }
    let flood_time = started.elapsed();
    // Keep probing a little after the flood: abandoned work would still be running.
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let probes = prober
        .join()
        .map_err(|_| anyhow::anyhow!("the prober panicked"))?;
    let after = peak_rss_kib(pid)?;

    let tally = tally.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let total: usize = tally.values().sum();
    println!(
        "flood: {} connections, {:.1} s, {} requests of {} bytes ({} items)",
        settings.connections,
        flood_time.as_secs_f64(),
        total,
        body.len(),
        settings.items
    );
    for (answer, count) in tally.iter() {
        println!("  {answer}: {count}");
    }
    let mut latencies: Vec<Duration> = probes.iter().filter_map(|p| *p).collect();
    latencies.sort();
    let failed = probes
        .iter()
        .filter(|p| p.is_none_or(|l| l >= PROBE_TIMEOUT))
        .count();
    let median = latencies.get(latencies.len() / 2).copied();
    let max = latencies.last().copied();
    println!(
        "/healthz: {} probes, {} failed or over {} ms, median {:.1} ms, max {:.1} ms",
        probes.len(),
        failed,
        PROBE_TIMEOUT.as_millis(),
        median.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        max.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
    );
    println!(
        "peak RSS (VmHWM) of pid {pid}: {:.1} MB before, {:.1} MB after",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    Ok(())
}

/// `http://127.0.0.1:PORT` (or `localhost`) → the socket address; anything else is refused.
fn loopback_address(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("API_FLOOD_URL must start with http://")?;
    let host_port = rest.trim_end_matches('/');
    let host_port = host_port.replace("localhost", "127.0.0.1");
    let addr: SocketAddr = host_port
        .parse()
        .with_context(|| format!("API_FLOOD_URL {url:?} is not http://IP:PORT"))?;
    ensure!(
        addr.ip().is_loopback(),
        "API_FLOOD_URL must be a loopback address"
    );
    Ok(addr)
}

/// `VmHWM` of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM line")?;
    line.split_whitespace()
        .nth(1)
        .context("empty VmHWM line")?
        .parse()
        .context("VmHWM is not a number")
}

/// A SealedSecret `shop/db` of `items` items sealed for a key the server does not have.
fn flood_body(items: usize) -> Result<Vec<u8>> {
    let now = jiff::Timestamp::now();
    let stranger = generate_key_pair(4096, "", now, jiff::SignedDuration::from_hours(1))?;
    let data: serde_json::Map<String, Value> = (0..items)
        .map(|i| (format!("key-{i:05}"), json!("aHVudGVyMg==")))
        .collect();
    let secret = secret_from_value(json!({
        "metadata": {"name": "db", "namespace": "shop"},
        "data": data
    }))?;
    let options = SealOptions {
        scope: Scope::Strict,
        namespace: NamespaceDefault {
            namespace: "shop".into(),
            explicit: true,
        },
        allow_empty_data: false,
    };
    let sealed = seal_secret(
        secret,
        &stranger.key.public_key(),
        &options,
        &mut SystemRandom,
    )?;
    Ok(sealed.to_upstream_value().to_string().into_bytes())
}

/// The controller's router with a real key ring, served on 127.0.0.1 by a runtime of its own.
struct InProcess {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl InProcess {
    fn start(settings: &Settings) -> Result<Self> {
        let now = jiff::Timestamp::now();
        let pair = generate_key_pair(4096, "", now, jiff::SignedDuration::from_hours(1))?;
        let mut secret = new_key_secret(&pair, "sealed-secrets-key", "kube-system", &[], &[])?;
        secret.metadata.name = Some("sealed-secrets-keyflood".into());
        let ring = Arc::new(KeyRing::default());
        ring.register(key_from_secret(&secret, KeyOrder::CertNotBefore)?);
        let keys: Arc<dyn KeyService> = ring;
        let config = HttpConfig {
            rate_limit: settings.rate_limit,
            rate_limit_burst: settings.rate_limit_burst,
            ..HttpConfig::default()
        };
        let two_minutes = Duration::from_secs(120);
        let router = with_timeouts(
            api_router(keys, Arc::new(Metrics::new("bench")), config),
            Timeouts {
                read: two_minutes,
                write: two_minutes,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(err) = axum::serve(listener, service).await {
                eprintln!("server failed: {err}");
            }
        });
        Ok(Self {
            addr,
            _runtime: runtime,
        })
    }
}

/// One flood connection: POSTs until `deadline` or `max_requests`, reconnecting when the
/// server closes the connection.
fn flood(
    addr: SocketAddr,
    connection: usize,
    body: &[u8],
    deadline: Instant,
    max_requests: usize,
    tally: &Mutex<BTreeMap<String, usize>>,
) {
    let mut stream: Option<BufReader<TcpStream>> = None;
    for request in 0..max_requests {
        if Instant::now() >= deadline {
            break;
        }
        let path = if request % 2 == 0 {
            "/v1/verify"
        } else {
            "/v1/rotate"
        };
        let forged = format!(
            "10.{}.{}.{}",
            connection,
            (request >> 8) & 0xff,
            request & 0xff
        );
        let answer = match stream.take().map_or_else(|| connect(addr), Ok) {
            Ok(mut conn) => match post(&mut conn, path, &forged, body) {
                Ok((status, keep)) => {
                    if keep {
                        stream = Some(conn);
                    }
                    format!("{path} {status}")
                }
                Err(err) => format!("{path} error: {}", err.kind()),
            },
            Err(err) => format!("connect error: {}", err.kind()),
        };
        if let Ok(mut tally) = tally.lock() {
            *tally.entry(answer).or_default() += 1;
        }
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(BufReader::new(stream))
}

/// Sends one request and reads the answer; returns the status and whether the connection
/// stays usable.
fn post(
    conn: &mut BufReader<TcpStream>,
    path: &str,
    forwarded_for: &str,
    body: &[u8],
) -> std::io::Result<(u16, bool)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-Forwarded-For: {forwarded_for}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = conn.get_mut();
    writer.write_all(head.as_bytes())?;
    // The server may answer (413, 429, 503) and close before reading the body.
    let sent = writer.write_all(body);
    let (status, length, close) = read_head(conn)?;
    let mut rest = vec![0u8; length];
    conn.read_exact(&mut rest)?;
    // Only answers given after the whole body was read leave the connection in step; hyper
    // closes a connection whose request body it did not read (413, 429, 503).
    let body_read = matches!(status, 200 | 400 | 409 | 500);
    Ok((status, !close && sent.is_ok() && body_read))
}

fn read_head(conn: &mut BufReader<TcpStream>) -> std::io::Result<(u16, usize, bool)> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let (mut length, mut close) = (0usize, false);
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(invalid("headers cut short"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().map_err(|_| invalid("bad content-length"))?;
            } else if name == "connection" && value.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
    }
    Ok((status, length, close))
}

/// Probes `/healthz` on a new connection every [`PROBE_INTERVAL`] until `stop`; `None` is a
/// failed probe.
fn probe_healthz(addr: SocketAddr, stop: &AtomicBool) -> Vec<Option<Duration>> {
    let mut probes = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome = (|| -> Result<()> {
            let stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT * 5)?;
            stream.set_read_timeout(Some(PROBE_TIMEOUT * 5))?;
            let mut conn = BufReader::new(stream);
            conn.get_mut().write_all(
                b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )?;
            let (status, length, _) = read_head(&mut conn)?;
            let mut body = vec![0u8; length];
            conn.read_exact(&mut body)?;
            if status != 200 || body != b"ok\n" {
                bail!("answer {status}");
            }
            Ok(())
        })();
        probes.push(outcome.ok().map(|()| started.elapsed()));
        thread::sleep(PROBE_INTERVAL.saturating_sub(started.elapsed()));
    }
    probes
}
