// Copyright 2020 The Evcxr Authors.
//
// Licensed under the Apache License, Version 2.0 <LICENSE or
// https://www.apache.org/licenses/LICENSE-2.0> or the MIT license <LICENSE
// or https://opensource.org/licenses/MIT>, at your option. This file may not be
// copied, modified, or distributed except according to those terms.

//! Two options for the cell crate's own compilation (not its dependencies'):
//!
//! - `EVCXR_CELL_RUSTC_ARGS`: extra rustc arguments for the cell crate, separated by the ASCII
//!   unit separator (0x1f, as in `CARGO_ENCODED_RUSTFLAGS`), placed before cargo's. Unlike
//!   `RUSTFLAGS`, changing them does not rebuild the dependencies.
//! - `EVCXR_REUSE_CELL_RUSTC=1`: once cargo has compiled a cell, later cells whose build
//!   configuration is unchanged (`Cargo.toml`, `.cargo/config.toml`, evcxr's cargo environment,
//!   the dependencies' build outputs) run the same rustc command directly, without cargo checking
//!   every dependency for freshness first (tenths of a second with a large dependency tree).
//!   The price: a path dependency whose sources are edited while the context runs is not rebuilt
//!   until the build configuration changes (a `:dep`) or the context restarts.
//!
//! Both work by making evcxr's subprocess binary cargo's `RUSTC_WORKSPACE_WRAPPER` (it wraps the
//! workspace's only member, the cell crate), which adds the arguments and records the command.

use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;
use std::ffi::OsString;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;

pub(crate) const CELL_RUSTC_ARGS_ENV: &str = "EVCXR_CELL_RUSTC_ARGS";
pub(crate) const REUSE_RUSTC_ENV: &str = "EVCXR_REUSE_CELL_RUSTC";
/// Where the wrapper records the cell crate's rustc command (set by evcxr for the wrapper).
pub(crate) const RECORD_RUSTC_ENV: &str = "EVCXR_RECORD_CELL_RUSTC";
/// The record's file name, in the crate directory.
pub(crate) const RECORD_FILE: &str = ".evcxr-cell-rustc.json";

/// Environment variables not to replay: cargo's jobserver (its file descriptors are gone), and the
/// wrapper's own.
const NOT_REPLAYED: &[&str] = &[
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    RECORD_RUSTC_ENV,
    crate::runtime::WRAP_RUSTC_ENV,
];

pub(crate) fn reuse_enabled() -> bool {
    std::env::var(REUSE_RUSTC_ENV).is_ok_and(|v| v == "1")
}

/// The extra arguments for the cell crate.
pub(crate) fn cell_args() -> Vec<OsString> {
    match std::env::var_os(CELL_RUSTC_ARGS_ENV) {
        Some(v) if !v.is_empty() => v
            .to_string_lossy()
            .split('\u{1f}')
            .filter(|a| !a.is_empty())
            .map(OsString::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// A rustc command as cargo ran it for the cell crate.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct RecordedRustc {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
}

/// Called by the wrapper, after rustc compiled the cell crate successfully.
pub(crate) fn record(command: &Command) -> Result<()> {
    let Some(file) = std::env::var_os(RECORD_RUSTC_ENV) else {
        return Ok(());
    };
    let text = |s: &std::ffi::OsStr| s.to_str().map(str::to_owned);
    let record = (|| {
        Some(RecordedRustc {
            program: text(command.get_program())?,
            args: command.get_args().map(text).collect::<Option<_>>()?,
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((text(&k)?, text(&v)?)))
                .filter(|(k, _)| !NOT_REPLAYED.contains(&k.as_str()))
                .collect(),
            cwd: text(std::env::current_dir().ok()?.as_os_str())?,
        })
    })();
    // A command that is not UTF-8 is not recorded: cargo keeps building those cells.
    if let Some(record) = record {
        std::fs::write(file, serde_json::to_vec(&record)?)?;
    }
    Ok(())
}

/// A recorded command, and what it is valid for.
pub(crate) struct FastRustc {
    /// The build configuration it was recorded with (see `configuration_key`).
    key: String,
    command: RecordedRustc,
    /// The files it reads besides the cell's source (`--extern` crates), with their modification
    /// times then.
    inputs: Vec<(PathBuf, Option<SystemTime>)>,
}

impl FastRustc {
    /// Reads what the wrapper recorded during the cargo build that just succeeded.
    pub(crate) fn load(crate_dir: &Path, key: String) -> Option<FastRustc> {
        let text = std::fs::read(crate_dir.join(RECORD_FILE)).ok()?;
        let command: RecordedRustc = serde_json::from_slice(&text).ok()?;
        let mut inputs = Vec::new();
        let mut args = command.args.iter();
        while let Some(arg) = args.next() {
            if arg == "--extern"
                && let Some((_, path)) = args.next().and_then(|a| a.split_once('='))
            {
                let path = PathBuf::from(path);
                let mtime = modified(&path);
                inputs.push((path, mtime));
            }
        }
        Some(FastRustc {
            key,
            command,
            inputs,
        })
    }

    /// Whether it still compiles what cargo would.
    pub(crate) fn is_valid_for(&self, key: &str) -> bool {
        self.key == key
            && self
                .inputs
                .iter()
                .all(|(path, mtime)| modified(path) == *mtime)
    }

    /// The command to run: the recorded one, reporting no build artifacts (they would be taken for
    /// diagnostics).
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(&self.command.program);
        for arg in &self.command.args {
            match arg.strip_prefix("--json=") {
                Some(kinds) => {
                    let kinds: Vec<&str> = kinds.split(',').filter(|k| *k != "artifacts").collect();
                    if !kinds.is_empty() {
                        command.arg(format!("--json={}", kinds.join(",")));
                    }
                }
                None => {
                    command.arg(arg);
                }
            }
        }
        command
            .env_clear()
            .envs(self.command.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.command.cwd);
        command
    }
}

/// The build configuration: everything besides the cell's source that decides how cargo builds
/// it.
pub(crate) fn configuration_key(crate_dir: &Path, cargo: &Command) -> String {
    let read = |name: &str| std::fs::read_to_string(crate_dir.join(name)).unwrap_or_default();
    format!(
        "{}\n{}\n{:?}",
        read("Cargo.toml"),
        read(".cargo/config.toml"),
        cargo
    )
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
