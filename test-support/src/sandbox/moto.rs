//! A private moto server per test: S3 for the state store and the EC2
//! instance metadata service (IMDS), on a free port chosen by the server.
//!
//! moto's own `python3 -m moto.server` always serves requests on several
//! threads, and its `If-None-Match: *` check and the write that follows are
//! two steps. Real S3 makes a conditional create atomic, and the init
//! election relies on exactly that, so this launcher serves one request at a
//! time, which restores the atomicity. It also binds port 0 and reports the
//! port it got, so tests running in parallel never collide.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::tools;

const LAUNCHER: &str = r#"
import sys
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

application = DomainDispatcherApplication(create_backend_app)
server = make_server("127.0.0.1", 0, application, threaded=False)
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// A running moto server, stopped when dropped.
pub struct Moto {
    child: Child,
    /// The port it serves on (127.0.0.1).
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts a server (panics with a hint when moto is missing).
    pub fn start() -> Moto {
        let python = tools::require("python3", "apt-get install -y python3");
        let log = tempfile::NamedTempFile::new().expect("moto log file");
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(LAUNCHER)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("moto log file"))
            .spawn()
            .expect("python3 starts");
        let stdout = child.stdout.take().expect("moto stdout");
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .expect("read moto's port");
        let Ok(port) = first_line.trim().parse::<u16>() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "moto did not start (is it installed? pip install 'moto[server]'):\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        };
        eprintln!("moto (single-threaded) listening on 127.0.0.1:{port}");
        Moto { child, port, log }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.curl(&["-X", "PUT", &format!("{}/{bucket}", self.endpoint())]);
    }

    /// Stores the contents of `file` as an object.
    pub fn put_object(&self, bucket: &str, key: &str, file: &Path) {
        self.curl(&[
            "-X",
            "PUT",
            // moto (werkzeug) would parse curl's default form type and drop the body.
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{}/{bucket}/{key}", self.endpoint()),
        ]);
    }

    /// Reads an object as the instance role (moto refuses anonymous reads of
    /// objects a signed request created).
    pub fn get_object(&self, bucket: &str, key: &str) -> String {
        self.curl(&[
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "test-key:test-secret-key",
            &format!("{}/{bucket}/{key}", self.endpoint()),
        ])
    }

    fn curl(&self, arguments: &[&str]) -> String {
        let output = Command::new("curl")
            .args(["--fail", "--silent", "--show-error"])
            .args(arguments)
            .output()
            .expect("curl runs");
        assert!(
            output.status.success(),
            "curl {arguments:?} failed: {}\nmoto log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.log.path()).unwrap_or_default()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
