//! End-to-end test harness: a real `etcd` + `kube-apiserver` started the way envtest starts
//! them, and our `controller`, `gitops-controller` and `kubeseal` run against it as child
//! processes (see `shared/spec/e2e-harness.md`).
//!
//! **Finding the control plane.** The binaries come from the folder named by
//! `KUBEBUILDER_ASSETS`, else from envtest's default `/usr/local/kubebuilder/bin`
//! ([`Assets::from_env`]); `kube-apiserver` and `etcd` must be there, `kube-controller-manager`
//! is recorded when present but never started.
//!
//! **Skipping.** Without them every test prints one line, `skipping e2e: <reason>`, and passes:
//! [`suite_cluster`] and [`private_cluster`] return `None` after printing it, and
//! [`assets_or_skip!`] returns from the test. With them the suites run for real, and a missing
//! kubectl is a failure, not a skip.
//!
//! Everything listens on 127.0.0.1 only, on free ports. The modules, each holding one concern:
//!
//! | module | holds |
//! |---|---|
//! | `assets` | the envtest folder, the workspace root, the skip line |
//! | `names` | unique object names and free loopback ports |
//! | `wait` | bounded polling |
//! | `process` | bounded command runs, logged children, stopping them, scrubbed environments |
//! | `http` | the loopback HTTP client and its answers |
//! | `pki` | the cluster's CA, certificates, keys and admin kubeconfig |
//! | `cluster` | etcd + kube-apiserver: start, stop, restart the apiserver, compact etcd |
//! | `kubectl` | kubectl against a cluster: apply, namespaces, CRDs, key Secrets |
//! | [`api`] | the REST interface straight: server-side apply, delete, list, kubeseal on a stream |
//! | `objects` | CRD and label names, readers of YAML, Secret data and PEM |
//! | `binaries` | our executables (built once) and running `kubeseal` |
//! | `controller` | our controller as a child process against a cluster |
//! | `suite` | what a suite starts with: skip, or a shared or private cluster with CRDs |
//! | [`sealing`] | the controller suites' sealing, waiting and checking helpers |
//!
//! Every public item is re-exported here, so tests import from the crate root.

// The harness is a library that every suite reads: everything public says what it is for. (It
// does not take the workspace lints: it needs `unsafe` for kill(2).)
#![deny(missing_docs)]

pub mod api;
mod assets;
mod binaries;
mod cluster;
mod controller;
mod http;
mod kubectl;
mod names;
mod objects;
mod pki;
mod process;
pub mod sealing;
mod suite;
mod ui;
mod wait;

pub use assets::{Assets, DEFAULT_ASSETS_DIR, resolve_path, skip, workspace_root};
pub use binaries::{Binaries, kubeseal};
pub use cluster::Cluster;
pub use controller::Controller;
pub use http::HttpReply;
pub use kubectl::{
    apply_file, apply_yaml, create_namespace, get_object, install_crd, key_secrets, kubectl,
    kubectl_json, kubectl_ok, kubectl_program, kubectl_with_stdin, require_kubectl,
};
pub use names::{free_port, unique_name};
pub use objects::{
    ACTIVE_KEY_SELECTOR, KEY_LABEL, SEALED_SECRET_CRD, parse_yaml, pem_body, read_yaml, secret_data,
};
pub use pki::Pki;
pub use process::{
    COMMAND_TIMEOUT, CommandOutput, STOP_GRACE, kill_child, run_command, scrub_env,
    scrub_proxy_env, stop_child, tail,
};
pub use suite::{private_cluster, private_cluster_with_audit, shared_cluster, suite_cluster};
pub use ui::Ui;
pub use wait::{READY_TIMEOUT, wait_for};
