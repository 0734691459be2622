//! Running the real `skiff` binary, in an environment the test controls.
//!
//! Every run starts from an empty environment plus a short allow-list
//! (`PATH`, locale, `TMPDIR`, ...), then gets a sandboxed `HOME`, the local
//! endpoint and test credentials. Nothing from the developer's machine (their
//! `~/.aws`, `SKIFF_STATE_STORE`, `EDITOR`, XDG directories) can leak in, and
//! no run can reach real AWS.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{LocalAws, SandboxHome, TEST_REGION};

/// How long one run may take before it is killed and the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Variables passed through from the test's own environment.
const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "RUST_BACKTRACE",
    "RUST_LOG",
    // Coverage runs (cargo llvm-cov) need these to collect profiles.
    "LLVM_PROFILE_FILE",
    "CARGO_LLVM_COV",
    "CARGO_LLVM_COV_TARGET_DIR",
    // Terraform tests: a plugin cache or mirror configured by the developer
    // (the sandboxed HOME hides ~/.terraformrc).
    "TF_PLUGIN_CACHE_DIR",
    "TF_CLI_CONFIG_FILE",
];

/// An endpoint where nothing listens: runs without a [`LocalAws`] fail fast
/// instead of reaching real AWS.
const NOWHERE: &str = "http://127.0.0.1:9";

/// The path of the `skiff` binary under test.
///
/// `$SKIFF_BIN` if set (relative to the current folder); else `skiff` next to this test binary's profile
/// directory (`target/<profile>/skiff`, which follows `CARGO_TARGET_DIR` and
/// `--release`); else `$CARGO_TARGET_DIR/debug/skiff`; else
/// `<workspace>/target/debug/skiff`. Panics if none exists: integration
/// tests need `cargo build -p skiff` first (the README's test command does
/// that; `cargo test` alone does not build other packages' binaries).
pub fn skiff_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SKIFF_BIN") {
        // Runs start in a sandbox folder: a relative path means relative to
        // where the caller was.
        let path = PathBuf::from(path);
        return std::path::absolute(&path).unwrap_or(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf();
    let mut candidates = Vec::new();
    // target/<profile>/deps/<test binary> -> target/<profile>/skiff
    if let Ok(test_binary) = std::env::current_exe() {
        if let Some(profile_dir) = test_binary.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join("skiff"));
        }
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(workspace.join(target).join("debug").join("skiff"));
    }
    candidates.push(workspace.join("target").join("debug").join("skiff"));
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return found.clone();
    }
    panic!(
        "the skiff binary was not found (looked at {candidates:?}): run `cargo build -p skiff` first, \
         or set SKIFF_BIN"
    );
}

/// One `skiff` command line, ready to run (repeatedly).
///
/// ```no_run
/// // (the subcommand is illustrative)
/// use skiff_tests::{LocalAws, SandboxHome, Skiff};
/// let aws = LocalAws::start();
/// let home = SandboxHome::new();
/// let bucket = aws.create_unique_bucket("state");
/// Skiff::new(&aws, &home)
///     .args(["get", "clusters", "--state", &format!("s3://{bucket}")])
///     .run()
///     .assert_success();
/// ```
#[derive(Clone, Debug)]
pub struct Skiff {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    current_dir: PathBuf,
    timeout: Duration,
}

impl Skiff {
    /// `skiff` with `HOME` = `home`, working directory `home`, and the AWS
    /// SDK pointed at `aws` with test credentials in us-east-1.
    pub fn new(aws: &LocalAws, home: &SandboxHome) -> Self {
        Self::with_endpoint(&aws.endpoint(), home)
    }

    /// `skiff` for commands that must not need AWS (`validate`, `new`, ...):
    /// like [`Skiff::new`], but the endpoint is a closed local port, so any
    /// AWS call fails at once.
    pub fn offline(home: &SandboxHome) -> Self {
        Self::with_endpoint(NOWHERE, home)
    }

    fn with_endpoint(endpoint: &str, home: &SandboxHome) -> Self {
        let mut env: Vec<(OsString, Option<OsString>)> = PASSED_THROUGH
            .iter()
            .filter_map(|name| std::env::var_os(name).map(|value| (name.into(), Some(value))))
            .collect();
        let set = [
            ("HOME", home.path().as_os_str()),
            ("AWS_ENDPOINT_URL", OsStr::new(endpoint)),
            ("AWS_ACCESS_KEY_ID", OsStr::new("testing")),
            ("AWS_SECRET_ACCESS_KEY", OsStr::new("testing")),
            ("AWS_REGION", OsStr::new(TEST_REGION)),
            ("AWS_EC2_METADATA_DISABLED", OsStr::new("true")),
            ("NO_COLOR", OsStr::new("1")),
        ];
        env.extend(
            set.iter()
                .map(|(name, value)| (name.into(), Some(value.into()))),
        );
        if std::env::var_os("RUST_BACKTRACE").is_none() {
            // A panic is always a bug; make its report useful.
            env.push(("RUST_BACKTRACE".into(), Some("1".into())));
        }
        Self {
            program: PathBuf::new(),
            args: Vec::new(),
            env,
            stdin: None,
            current_dir: home.path().to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Run `program` instead of skiff, in the same environment. For testing
    /// the harness itself, or a helper that skiff would run.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Append arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Set an environment variable (e.g. `SKIFF_STATE_STORE`, `EDITOR`).
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((name.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Remove an environment variable the harness would otherwise set.
    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Self {
        self.env.push((name.as_ref().to_owned(), None));
        self
    }

    /// Feed `input` on stdin (otherwise stdin is empty, as in CI).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Run in `dir` instead of the sandbox home.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = dir.into();
        self
    }

    /// Kill the run and fail the test after `timeout` (default 300 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        let program = if self.program.as_os_str().is_empty() {
            "skiff".to_owned()
        } else {
            self.program.display().to_string()
        };
        std::iter::once(program)
            .chain(
                self.args
                    .iter()
                    .map(|arg| shell_quote(&arg.to_string_lossy())),
            )
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run to completion and capture the result; panics only on timeout.
    pub fn run(&self) -> SkiffOutput {
        self.spawn().wait()
    }

    /// Start the run and return at once (for concurrency and kill tests).
    pub fn spawn(&self) -> RunningSkiff {
        let program = if self.program.as_os_str().is_empty() {
            skiff_binary()
        } else {
            self.program.clone()
        };
        let mut command = Command::new(&program);
        command
            .args(&self.args)
            .current_dir(&self.current_dir)
            .env_clear()
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        // A run starts as it would from a terminal: SIGINT, SIGQUIT and
        // SIGTERM at their defaults, even when this test process inherited
        // them ignored (started by a runner in the background, or under
        // `nohup`), so that the interruption tests mean the same everywhere.
        // SAFETY: between fork and exec only async-signal-safe calls run;
        // signal(2) is one.
        unsafe {
            command.pre_exec(|| {
                for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));

        let stdin_writer = match (child.stdin.take(), self.stdin.clone()) {
            (Some(mut pipe), Some(input)) => Some(thread::spawn(move || {
                // The program may exit without reading everything; that is its
                // business, not a harness failure.
                let _ = pipe.write_all(&input);
            })),
            _ => None,
        };
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        RunningSkiff {
            child,
            command_line: self.command_line(),
            timeout: self.timeout,
            started: Instant::now(),
            stdin_writer,
            stdout,
            stderr,
            peak_anonymous_kib: 0,
        }
    }
}

/// A `skiff` process started with [`Skiff::spawn`]; killed if dropped while
/// still running.
pub struct RunningSkiff {
    child: Child,
    command_line: String,
    timeout: Duration,
    started: Instant,
    stdin_writer: Option<JoinHandle<()>>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// The largest anonymous memory sampled so far, KiB.
    peak_anonymous_kib: u64,
}

impl RunningSkiff {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send SIGINT, as Ctrl-C in a terminal would.
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Send SIGKILL (no chance to clean up).
    pub fn kill(&mut self) {
        // Fails only if it already exited, which is fine.
        let _ = self.child.kill();
    }

    fn signal(&self, name: &str) {
        // kill(1) rather than a libc dependency for one call.
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|error| panic!("cannot run kill(1): {error}"));
        assert!(status.success(), "kill -{name} {} failed", self.child.id());
    }

    /// Wait for it to exit (up to the timeout) and collect its output.
    pub fn wait(mut self) -> SkiffOutput {
        let deadline = self.started + self.timeout;
        let mut naps_to_sample: u64 = 0;
        let (status, usage) = loop {
            match reap(self.child.id(), false) {
                Ok(Some(reaped)) => break reaped,
                // Short naps: the benchmark times runs of a few milliseconds.
                Ok(None) if Instant::now() < deadline => {
                    if naps_to_sample == 0 {
                        self.peak_anonymous_kib =
                            self.peak_anonymous_kib.max(anonymous_kib(self.child.id()));
                        naps_to_sample = ANONYMOUS_SAMPLE_NAPS;
                    }
                    naps_to_sample -= 1;
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(None) => {
                    self.kill();
                    let (status, usage) = reap(self.child.id(), true)
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| panic!("waiting for {} after kill", self.command_line));
                    let output = self.collect(status, usage);
                    panic!("timed out after {:?}, killed\n{output}", self.timeout);
                }
                // `is_running` reaped it already (std keeps its status),
                // so its peak memory is unknown.
                Err(error) if error.raw_os_error() == Some(libc::ECHILD) => {
                    match self.child.try_wait() {
                        Ok(Some(status)) => break (status, Usage::default()),
                        _ => panic!("waiting for {}: {error}", self.command_line),
                    }
                }
                Err(error) => panic!("waiting for {}: {error}", self.command_line),
            }
        };
        self.collect(status, usage)
    }

    fn collect(&mut self, status: ExitStatus, usage: Usage) -> SkiffOutput {
        if let Some(writer) = self.stdin_writer.take() {
            let _ = writer.join();
        }
        let text = |handle: Option<JoinHandle<Vec<u8>>>| {
            handle
                .and_then(|handle| handle.join().ok())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        };
        SkiffOutput {
            command_line: self.command_line.clone(),
            status,
            code: status.code(),
            stdout: text(self.stdout.take()),
            stderr: text(self.stderr.take()),
            duration: self.started.elapsed(),
            peak_memory_kib: usage.peak_memory_kib,
            cpu: usage.cpu,
            peak_anonymous_kib: self.peak_anonymous_kib,
        }
    }
}

/// How often (in 1 ms naps) [`RunningSkiff::wait`] samples the process's
/// anonymous memory: often enough to see a peak that lasts 10 ms, rarely
/// enough not to load the machine it measures.
const ANONYMOUS_SAMPLE_NAPS: u64 = 10;

/// The anonymous memory (heap, stacks) of process `pid` now, in KiB, from
/// `/proc/PID/smaps_rollup`; 0 where that cannot be read (not Linux, or it
/// exited).
fn anonymous_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|rollup| {
            rollup.lines().find_map(|line| {
                line.strip_prefix("Anonymous:")
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// What a reaped child used.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    /// Peak resident memory, KiB.
    peak_memory_kib: u64,
    /// CPU time, user and system.
    cpu: Duration,
}

/// Waits for the child `pid` (without blocking unless `block`) with
/// `wait4`, which, unlike `std::process::Child::wait`, also returns the
/// child's resource usage: its exit status, peak resident memory and CPU
/// time, or `None` while it runs.
///
/// Once this has reaped the child, `Child::try_wait` fails (no such child)
/// instead of reporting it running, so [`RunningSkiff`]'s drop never
/// signals a reused process id.
fn reap(pid: u32, block: bool) -> std::io::Result<Option<(ExitStatus, Usage)>> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::other(format!("process id {pid} out of range")))?;
    let mut raw_status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in; all-zero is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let options = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: both pointers are to live locals of the right types.
        let reaped = unsafe { libc::wait4(pid, &mut raw_status, options, &mut usage) };
        if reaped == pid {
            let time = |value: libc::timeval| {
                Duration::from_secs(u64::try_from(value.tv_sec).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(value.tv_usec).unwrap_or(0))
            };
            let used = Usage {
                peak_memory_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
                cpu: time(usage.ru_utime) + time(usage.ru_stime),
            };
            return Ok(Some((ExitStatus::from_raw(raw_status), used)));
        }
        if reaped == 0 {
            return Ok(None);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

impl Drop for RunningSkiff {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a finished `skiff` run did. Its `Display` shows everything, so a
/// failing assertion explains itself.
#[derive(Clone, Debug)]
pub struct SkiffOutput {
    /// The command line that ran.
    pub command_line: String,
    /// The raw exit status.
    pub status: ExitStatus,
    /// The exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
    /// Wall-clock time of the run.
    pub duration: Duration,
    /// The largest anonymous memory (heap, stacks: what it allocated, not
    /// the pages of its binary) seen while it ran, sampled every 10 ms from
    /// `/proc/PID/smaps_rollup`, KiB; 0 if not sampled.
    pub peak_anonymous_kib: u64,
    /// The process's peak resident memory (`ru_maxrss`, KiB on Linux); 0
    /// if unknown (the process was reaped by [`RunningSkiff::is_running`]).
    pub peak_memory_kib: u64,
    /// The CPU time it used, user and system; zero when unknown (as
    /// `peak_memory_kib`).
    pub cpu: Duration,
}

impl SkiffOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Exit code 101 or a Rust panic message on stderr: always a bug.
    pub fn panicked(&self) -> bool {
        self.code == Some(101) || self.stderr.contains("panicked at")
    }

    /// Fail the test unless the exit code is 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        if !self.success() {
            panic!("expected success\n{self}");
        }
        self
    }

    /// Fail the test unless the exit code is `code` (and it did not panic).
    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Self {
        if self.code != Some(code) || self.panicked() {
            panic!("expected exit code {code} without a panic\n{self}");
        }
        self
    }

    /// Fail the test unless it exited non-zero without panicking.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        if self.success() || self.code.is_none() || self.panicked() {
            panic!("expected a clean failure (non-zero exit, no panic)\n{self}");
        }
        self
    }

    /// Fail the test if it panicked (exit 101 or "panicked at" on stderr).
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        if self.panicked() {
            panic!("skiff panicked (a panic is always a bug)\n{self}");
        }
        self
    }

    /// Fail the test unless stdout contains `text`.
    #[track_caller]
    pub fn assert_stdout_contains(&self, text: &str) -> &Self {
        if !self.stdout.contains(text) {
            panic!("expected stdout to contain {text:?}\n{self}");
        }
        self
    }

    /// Fail the test unless stderr contains `text`.
    #[track_caller]
    pub fn assert_stderr_contains(&self, text: &str) -> &Self {
        if !self.stderr.contains(text) {
            panic!("expected stderr to contain {text:?}\n{self}");
        }
        self
    }

    /// stdout parsed as JSON (for `-o json`); fails the test if it is not.
    #[track_caller]
    pub fn stdout_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error})\n{self}"))
    }
}

impl fmt::Display for SkiffOutput {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "command: {}", self.command_line)?;
        match (self.code, self.status.signal()) {
            (Some(code), _) => writeln!(formatter, "exit code: {code}")?,
            (None, Some(signal)) => writeln!(formatter, "killed by signal {signal}")?,
            (None, None) => writeln!(formatter, "exit status: {}", self.status)?,
        }
        writeln!(formatter, "duration: {:?}", self.duration)?;
        writeln!(formatter, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(formatter, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&byte));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
