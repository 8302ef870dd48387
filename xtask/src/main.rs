//! `cargo xtask <command>`: the few commands people run on this repository, in one place.
//!
//! Each command is a thin, printed wrapper around what CI and the docs already run, so a
//! newcomer can find them with `cargo xtask help` and nothing here can drift from CI: `test` is
//! the README's test command and the one `.ci/run` calls. Standard library only, so it builds in
//! a second and needs nothing installed.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

/// One command: its name, what it does, and the programs it runs in order.
struct Task {
    name: &'static str,
    about: &'static str,
    steps: &'static [Step],
}

/// One program run by a task: arguments and extra environment.
struct Step {
    program: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const fn step(program: &'static str, args: &'static [&'static str]) -> Step {
    Step {
        program,
        args,
        env: &[],
    }
}

const TASKS: &[Task] = &[
    Task {
        name: "demo",
        about: "offline seal/unseal demo, no cluster (the README's first command)",
        steps: &[step("./demo.sh", &[])],
    },
    Task {
        name: "test",
        about: "every test (the README's second command; .ci/run calls the same)",
        steps: &[step("cargo", &["test", "--workspace", "--locked"])],
    },
    Task {
        name: "e2e",
        about: "only the end-to-end suites against a real control plane \
                (KUBEBUILDER_ASSETS or /usr/local/kubebuilder/bin)",
        steps: &[step(
            "cargo",
            &["test", "--locked", "-p", "sealed-secrets-e2e"],
        )],
    },
    Task {
        name: "lint",
        about: "formatting and clippy as CI checks them",
        steps: &[
            step("cargo", &["fmt", "--all", "--", "--check"]),
            step(
                "cargo",
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
        ],
    },
    Task {
        name: "bench",
        about: "criterion benchmarks of every crate (figures go to BENCHMARKS.md by hand)",
        steps: &[step("cargo", &["bench", "--workspace", "--locked"])],
    },
    Task {
        name: "fuzz",
        about: "a short run of every cargo-fuzz target (bench/fuzz-smoke.sh; docs/fuzzing.md)",
        steps: &[step("bash", &["bench/fuzz-smoke.sh"])],
    },
    Task {
        name: "crds",
        about: "regenerate crds/ from the Rust types and copy them into the chart",
        steps: &[
            Step {
                program: "cargo",
                args: &["test", "-p", "sealed-secrets-core", "--test", "crd"],
                env: &[("UPDATE_CRDS", "1")],
            },
            Step {
                program: "cargo",
                args: &["test", "-p", "sealed-secrets-sync", "--test", "crd"],
                env: &[("UPDATE_CRDS", "1")],
            },
            step("sh", &["-c", "cp crds/*.yaml charts/sealed-secrets/crds/"]),
        ],
    },
    Task {
        name: "ci",
        about: "what CI runs on a clean clone (.ci/run)",
        steps: &[step("bash", &[".ci/run"])],
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some(name) = args.first() else {
        print_help();
        return ExitCode::from(2);
    };
    if matches!(name.as_str(), "help" | "-h" | "--help") {
        print_help();
        return ExitCode::SUCCESS;
    }
    let Some(task) = TASKS.iter().find(|task| task.name == name) else {
        eprintln!("xtask: unknown command `{name}`");
        print_help();
        return ExitCode::from(2);
    };
    let root = workspace_root();
    for (index, step) in task.steps.iter().enumerate() {
        // Extra arguments go to the last program (for example a test name filter).
        let extra: &[String] = if index + 1 == task.steps.len() {
            &args[1..]
        } else {
            &[]
        };
        let mut command = Command::new(step.program);
        command
            .args(step.args)
            .args(extra)
            .envs(step.env.iter().copied())
            .current_dir(&root);
        eprintln!("xtask: {}", describe(step, extra));
        match command.status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("xtask: `{}` failed ({status})", step.program);
                return ExitCode::from(status.code().map_or(1, |c| c.clamp(1, 255) as u8));
            }
            Err(err) => {
                eprintln!("xtask: could not run `{}`: {err}", step.program);
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

/// The command line of one step as a shell would show it.
fn describe(step: &Step, extra: &[String]) -> String {
    let mut words: Vec<String> = step.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    words.push(step.program.to_string());
    words.extend(step.args.iter().map(|a| a.to_string()));
    words.extend_from_slice(extra);
    words.join(" ")
}

/// The repository root: the parent of this crate's folder.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn print_help() {
    println!("usage: cargo xtask <command> [arguments for its last program]\n\ncommands:");
    for task in TASKS {
        println!("  {:<6} {}", task.name, task.about);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_task_is_the_readme_command() {
        let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
        let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).unwrap();
        let test = TASKS.iter().find(|t| t.name == "test").unwrap();
        let line = describe(&test.steps[0], &[]);
        assert!(readme.contains(&line), "README lacks `{line}`");
        assert!(ci.contains(&line), ".ci/run lacks `{line}`");
    }

    #[test]
    fn every_script_a_task_runs_exists() {
        let root = workspace_root();
        for task in TASKS {
            for step in task.steps {
                let script = match step.program {
                    "bash" => step.args[0],
                    program if program.starts_with("./") => program,
                    _ => continue,
                };
                assert!(root.join(script).is_file(), "{}: {script}", task.name);
            }
        }
    }

    #[test]
    fn task_names_are_unique() {
        let mut names: Vec<_> = TASKS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TASKS.len());
    }
}
