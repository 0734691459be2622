//! A private moto server per test: S3 for the state store and the EC2
//! instance metadata service (IMDS), on a free port chosen by the server.
//!
//! moto's own `python3 -m moto.server` always serves requests on several
//! threads, and its `If-None-Match: *` check and the write that follows are
//! two steps. Real S3 makes a conditional create atomic, and the init
//! election relies on exactly that, so this launcher serves one request at a
//! time, which restores the atomicity. It also binds port 0 and reports the
//! port it got, so tests running in parallel never collide.
//!
//! The sandbox's instances are real moto EC2 instances, but the tests name
//! them (`i-0aaaaaaaaaaaaaaa1`) and moto draws instance IDs at random. So
//! the launcher wraps moto's ID generator: a POST of an ID to the private
//! path `/_sandbox/next-instance-id` makes the next RunInstances use it.
//! moto also ends a terminated instance at once, where AWS shows it
//! `shutting-down` while its OS shuts down: a POST of `<id> <state>` to
//! `/_sandbox/instance-state` sets the state an instance reports. A
//! terminated instance's private IP is free again, as in AWS (moto keeps it).
//! moto 5.2 has no Auto Scaling `CompleteLifecycleAction`: the launcher
//! answers it as AWS does when the action is pending (an empty result,
//! Auto Scaling API reference "CompleteLifecycleAction") and keeps each
//! call's parameters, which `/_sandbox/lifecycle-actions` lists, one call a
//! line.
//!
//! Findings this relies on (moto 5.2): a VPC `127.A.0.0/16` with a subnet
//! `127.A.B.0/24` is accepted, and RunInstances with `PrivateIpAddress`
//! 127.A.B.C in it reports that address; DescribeInstances filters on tags
//! and `instance-state-name`; Auto Scaling's AttachInstances,
//! SetInstanceHealth and DescribeAutoScalingInstances work (SetInstanceHealth
//! of an instance in no group is a server error in moto, so every sandbox
//! instance is put in its group's auto scaling group); all of them answer
//! curl's `--aws-sigv4 "aws:amz:us-east-1:ec2|autoscaling"` form POSTs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::tools;

const LAUNCHER: &str = r#"
import sys
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

import moto.ec2.models.instances as instances

moto_application = DomainDispatcherApplication(create_backend_app)
chosen_ids = []
random_instance_id = instances.random_instance_id

def next_instance_id():
    return chosen_ids.pop(0) if chosen_ids else random_instance_id()

instances.random_instance_id = next_instance_id

# AWS frees a terminated instance's private IP (its primary interface is
# deleted with it), so a replacement may launch at the same fixed address
# (an external etcd member's); moto 5.2 keeps the address reserved in its
# subnet and fails that RunInstances with "IP already in use".
terminate = instances.Instance.terminate

def terminate_and_free_address(self):
    state = terminate(self)
    subnet = self.ec2_backend.get_subnet(self.subnet_id) if self.subnet_id else None
    if subnet is not None and self.private_ip:
        subnet.del_subnet_ip(self.private_ip)
    return state

instances.Instance.terminate = terminate_and_free_address

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
               "stopping": 64, "stopped": 80}

def set_instance_state(instance_id, name):
    from moto.ec2.models import ec2_backends
    for account in list(ec2_backends.keys()):
        for backend in list(ec2_backends[account].values()):
            for reservation in backend.reservations.values():
                for instance in reservation.instances:
                    if instance.id == instance_id:
                        instance._state.name = name
                        instance._state.code = STATE_CODES[name]
                        return True
    return False

completed_lifecycle_actions = []

def complete_lifecycle_action(environ, start_response):
    """Answers Auto Scaling's CompleteLifecycleAction (absent from moto), or
    passes the request on with its body put back."""
    import io
    from urllib.parse import parse_qs
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    form = parse_qs(body.decode(errors="replace"))
    if form.get("Action") != ["CompleteLifecycleAction"]:
        return None
    names = ["AutoScalingGroupName", "LifecycleHookName", "LifecycleActionToken",
             "InstanceId", "LifecycleActionResult"]
    completed_lifecycle_actions.append(" ".join(form.get(name, [""])[0] for name in names))
    start_response("200 OK", [("Content-Type", "text/xml")])
    return [b'<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
            b'<CompleteLifecycleActionResult/><ResponseMetadata><RequestId>sandbox</RequestId>'
            b'</ResponseMetadata></CompleteLifecycleActionResponse>']

def application(environ, start_response):
    if environ.get("PATH_INFO") == "/_sandbox/lifecycle-actions":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["".join(line + "\n" for line in completed_lifecycle_actions).encode()]
    answered = complete_lifecycle_action(environ, start_response)
    if answered is not None:
        return answered
    if environ.get("PATH_INFO") == "/_sandbox/next-instance-id":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        chosen_ids.append(environ["wsgi.input"].read(length).decode().strip())
        start_response("204 No Content", [])
        return [b""]
    if environ.get("PATH_INFO") == "/_sandbox/instance-state":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        instance_id, name = environ["wsgi.input"].read(length).decode().split()
        found = name in STATE_CODES and set_instance_state(instance_id, name)
        start_response("204 No Content" if found else "404 Not Found", [])
        return [b""]
    return moto_application(environ, start_response)

server = make_server("127.0.0.1", 0, application, threaded=False)
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// A running moto server, stopped when dropped.
pub struct Moto {
    child: Child,
    /// The port nodes send state-store and metadata requests to: this
    /// server's, unless a test points it at another endpoint.
    pub port: u16,
    /// This server's own port, where the sandbox's instances are (EC2 and
    /// Auto Scaling calls always come here).
    server_port: u16,
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
        Moto {
            child,
            port,
            server_port: port,
            log,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// This server's own port (see [`Moto::port`]).
    pub fn server_port(&self) -> u16 {
        self.server_port
    }

    fn own_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.server_port)
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.curl(&["-X", "PUT", &format!("{}/{bucket}", self.endpoint())]);
    }

    /// Stores the contents of `file` as an object, signed as the instance
    /// role (moto refuses an anonymous overwrite of a signed write).
    pub fn put_object(&self, bucket: &str, key: &str, file: &Path) {
        self.curl(&[
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "test-key:test-secret-key",
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

    /// Deletes an object, signed as the instance role.
    pub fn delete_object(&self, bucket: &str, key: &str) {
        self.curl(&[
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "test-key:test-secret-key",
            "-X",
            "DELETE",
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

    /// The response headers of a HEAD of an object, lowercased (to check
    /// how it is stored, e.g. its server-side encryption).
    pub fn object_headers(&self, bucket: &str, key: &str) -> String {
        self.curl(&[
            "--head",
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "test-key:test-secret-key",
            &format!("{}/{bucket}/{key}", self.endpoint()),
        ])
        .to_ascii_lowercase()
    }

    /// The keys under `prefix` (ListObjectsV2, one page: tests store few).
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let listing = self.curl(&[
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "test-key:test-secret-key",
            &format!(
                "{}/{bucket}/?list-type=2&prefix={}",
                self.endpoint(),
                prefix.replace('/', "%2F")
            ),
        ]);
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
            .collect()
    }

    /// Makes the next RunInstances create `instance_id` (see the module docs).
    pub fn choose_next_instance_id(&self, instance_id: &str) {
        self.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            instance_id,
            &format!("{}/_sandbox/next-instance-id", self.own_endpoint()),
        ]);
    }

    /// Puts an instance in an EC2 state moto never shows by itself (AWS
    /// keeps a terminating instance `shutting-down` while its OS shuts down,
    /// which is when its leave unit runs): see the module docs.
    pub fn set_instance_state(&self, instance_id: &str, state: &str) {
        self.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("{instance_id} {state}"),
            &format!("{}/_sandbox/instance-state", self.own_endpoint()),
        ]);
    }

    /// An EC2 Query API call (Version 2016-11-15) signed as the instance
    /// role; returns the XML response.
    pub fn ec2(&self, parameters: &[(&str, &str)]) -> String {
        self.query("ec2", "2016-11-15", parameters)
    }

    /// An SQS Query API call (Version 2012-11-05); returns the XML.
    pub fn sqs(&self, parameters: &[(&str, &str)]) -> String {
        self.query("sqs", "2012-11-05", parameters)
    }

    /// The CompleteLifecycleAction calls this server answered, one a line:
    /// group, hook, token, instance, result.
    pub fn completed_lifecycle_actions(&self) -> Vec<String> {
        self.curl(&[&format!(
            "{}/_sandbox/lifecycle-actions",
            self.own_endpoint()
        )])
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// An Auto Scaling Query API call (Version 2011-01-01); returns the XML.
    pub fn autoscaling(&self, parameters: &[(&str, &str)]) -> String {
        self.query("autoscaling", "2011-01-01", parameters)
    }

    fn query(&self, service: &str, version: &str, parameters: &[(&str, &str)]) -> String {
        let signing = format!("aws:amz:us-east-1:{service}");
        let mut arguments: Vec<String> = vec![
            "-X".into(),
            "POST".into(),
            "--aws-sigv4".into(),
            signing,
            "--user".into(),
            "test-key:test-secret-key".into(),
            "--data-urlencode".into(),
            format!("Version={version}"),
        ];
        for (name, value) in parameters {
            arguments.push("--data-urlencode".into());
            arguments.push(format!("{name}={value}"));
        }
        arguments.push(format!("{}/", self.own_endpoint()));
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        self.curl(&arguments)
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
