//! End-to-end harness: a moto server on a free loopback port (one per test binary, or one
//! per test that needs special settings), the real `plinth` binary run in a temporary
//! folder, and SDK clients to check what really exists in the emulator.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};

pub const REGION: &str = "us-east-1";

/// A client of `$krate` talking to this test's emulator in [`REGION`].
macro_rules! emulator_client {
    ($env:expr, $krate:ident) => {
        emulator_client!($env, $krate, |b| b)
    };
    ($env:expr, $krate:ident, $tweak:expr) => {{
        let builder = $krate::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&$env.check_endpoint)
            .credentials_provider($krate::config::Credentials::for_tests());
        $krate::Client::from_conf(($tweak)(builder).build())
    }};
}

/// A client of `$krate` working in the account `$credentials` belong to (see
/// [`Env::credentials_in`]).
macro_rules! emulator_client_in {
    ($env:expr, $krate:ident, $credentials:expr) => {{
        let config = $krate::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&$env.check_endpoint)
            .credentials_provider($credentials.clone())
            .build();
        $krate::Client::from_conf(config)
    }};
}

/// A running emulator, stopped when dropped (and by itself if this process dies).
pub struct Moto {
    child: Child,
    /// Where plinth is pointed.
    pub endpoint: String,
    /// The same emulator without injected faults, for the tests' own checks.
    pub check_endpoint: String,
}

/// The public hosted zone the custom-domain stacks are given, standing for the person's own.
pub const LAB_ZONE: &str = "plinth-lab.example.com";

/// The faults the ready stacks are tested under: 8% throttling, 4% 5xx, 3% answers lost
/// after the work was done, and 0 to 30 ms of latency on every request.
pub const FAULTS: &str = "throttle=0.08,error=0.04,lost=0.03,latency=0-30ms";

impl Moto {
    /// Starts a fresh emulator; `latency_ms` delays every request.
    pub fn start(latency_ms: u64) -> Moto {
        Moto::launch(&["--latency-ms", &latency_ms.to_string()])
    }

    /// Starts a fresh emulator answering like a busy, flaky AWS (`tests/emulator/faults.py`):
    /// `faults` as `--faults` takes them, chosen by `seed`.
    pub fn with_faults(faults: &str, seed: u64) -> Moto {
        Moto::launch(&["--faults", faults, "--seed", &seed.to_string()])
    }

    fn launch(extra: &[&str]) -> Moto {
        let (port, clean) = (free_port(), free_port());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emulator/moto_server.py");
        let child = Command::new(python())
            .arg(&script)
            .args(["--port", &port.to_string()])
            .args(["--clean-port", &clean.to_string()])
            .args(["--parent-pid", &std::process::id().to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the moto server (pip install -r tests/emulator/requirements.txt)");
        wait_for_port(port);
        wait_for_port(clean);
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            check_endpoint: format!("http://127.0.0.1:{clean}"),
        }
    }

    /// How many of each fault the emulator injected so far.
    pub fn fault_counts(&self) -> std::collections::BTreeMap<String, u64> {
        let addr = self.check_endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to the emulator");
        use std::io::{Read, Write};
        write!(
            stream,
            "GET /_plinth/faults HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("ask for the fault counts");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("read the fault counts");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("{}");
        serde_json::from_str(body).expect("fault counts are JSON")
    }

    /// The emulator shared by every test that needs no special settings. Tests keep apart
    /// by using their own stack and resource names.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| Moto::start(0))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("PLINTH_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the moto server did not start listening on port {port} within 60s");
}

/// What a plinth run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
    /// Fails the test with everything plinth printed unless it exited with `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "plinth panicked:\n{}",
            self.stderr
        );
        self
    }
    pub fn ok(self) -> Run {
        self.expect_code(0)
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// One test's folder with its stack files and state, against one emulator.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    /// Where the test's own clients check what exists (never faulted).
    pub check_endpoint: String,
    /// Run plinth with its default retries (fault tests) rather than the test default.
    pub default_attempts: bool,
}

impl Env {
    pub fn new() -> Env {
        Env::with_emulator(Moto::shared())
    }

    pub fn with_emulator(moto: &Moto) -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            endpoint: moto.endpoint.clone(),
            check_endpoint: moto.check_endpoint.clone(),
            default_attempts: false,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file in the test folder (stack files, variable files, item files).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Copies `stacks/<name>` (a file or folder) to `to` in the test folder, where the test
    /// may change it.
    pub fn copy_from_stacks(&self, name: &str, to: &str) {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("stacks")
            .join(name);
        copy_tree(&from, &self.path(to));
    }

    /// Copies a file or folder of `examples/` into the environment's folder.
    pub fn copy_from_examples(&self, name: &str, to: &str) {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        copy_tree(&from, &self.path(to));
    }

    /// The plinth command, set up for the emulator, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plinth"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_CONFIG_FILE", self.path("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path("no-aws-credentials"),
            )
            .env("NO_COLOR", "1")
            .env_remove("PLINTH_STACK")
            .env_remove("PLINTH_WORKSPACE")
            .env_remove("PLINTH_STATE_DIR")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null());
        // Most tests keep attempts low: the emulator answers what it does not implement with a
        // 500, which would otherwise be retried for minutes. Fault tests use the defaults.
        if !self.default_attempts {
            cmd.env("PLINTH_MAX_ATTEMPTS", "2");
        } else {
            cmd.env_remove("PLINTH_MAX_ATTEMPTS");
        }
        cmd
    }

    /// Starts plinth in the background, its output going to `name.out` and `name.err`.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let out = std::fs::File::create(self.path(&format!("{name}.out"))).expect("stdout file");
        let err = std::fs::File::create(self.path(&format!("{name}.err"))).expect("stderr file");
        self.command(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start plinth")
    }

    /// A file the test folder holds, as text (empty when missing).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Runs plinth to the end.
    pub fn plinth(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run plinth"))
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        emulator_client!(self, aws_sdk_dynamodb)
    }
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        emulator_client!(self, aws_sdk_ec2)
    }
    pub fn elasticache(&self) -> aws_sdk_elasticache::Client {
        emulator_client!(self, aws_sdk_elasticache)
    }
    pub fn s3(&self) -> aws_sdk_s3::Client {
        emulator_client!(self, aws_sdk_s3, |b: aws_sdk_s3::config::Builder| b
            .force_path_style(true))
    }
    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        emulator_client!(self, aws_sdk_cloudfront)
    }
    pub fn acm(&self) -> aws_sdk_acm::Client {
        emulator_client!(self, aws_sdk_acm)
    }
    pub fn iam(&self) -> aws_sdk_iam::Client {
        emulator_client!(self, aws_sdk_iam)
    }
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        emulator_client!(self, aws_sdk_lambda)
    }
    pub fn tagging(&self) -> aws_sdk_resourcegroupstagging::Client {
        emulator_client!(self, aws_sdk_resourcegroupstagging)
    }
    pub fn route53(&self) -> aws_sdk_route53::Client {
        emulator_client!(self, aws_sdk_route53)
    }
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        emulator_client!(self, aws_sdk_ssm)
    }
    /// DynamoDB in another region than the tests' default one (a global table's replica).
    pub fn dynamodb_at(&self, region: &str) -> aws_sdk_dynamodb::Client {
        let region = region.to_string();
        emulator_client!(
            self,
            aws_sdk_dynamodb,
            |b: aws_sdk_dynamodb::config::Builder| b.region(Region::new(region))
        )
    }
    pub fn autoscaling(&self) -> aws_sdk_applicationautoscaling::Client {
        emulator_client!(self, aws_sdk_applicationautoscaling)
    }
    pub fn kms(&self) -> aws_sdk_kms::Client {
        emulator_client!(self, aws_sdk_kms)
    }
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        emulator_client!(self, aws_sdk_cloudwatchlogs)
    }

    /// The `--var` arguments a ready stack needs beyond `student` (a custom domain's zone and
    /// name), after making what they name in the emulator (the zone, as the person's own).
    pub async fn lab_vars(&self, stack_text: &str) -> Vec<String> {
        if !stack_text.contains("\n  zone:\n") {
            return Vec::new();
        }
        let zones = self
            .route53()
            .list_hosted_zones_by_name()
            .dns_name(LAB_ZONE)
            .send()
            .await
            .expect("list zones");
        let exists = zones
            .hosted_zones()
            .iter()
            .any(|z| z.name().trim_end_matches('.') == LAB_ZONE);
        if !exists {
            self.route53()
                .create_hosted_zone()
                .name(LAB_ZONE)
                .caller_reference(format!("lab-zone-{}", std::process::id()))
                .send()
                .await
                .expect("create the lab's zone");
        }
        vec![
            "--var".into(),
            format!("zone={LAB_ZONE}"),
            "--var".into(),
            format!("domain=site.{LAB_ZONE}"),
        ]
    }

    /// Credentials of another account: the emulator lets any role be assumed, and what
    /// the credentials then make is in the role's account, seen only with them.
    pub async fn credentials_in(&self, account: &str) -> aws_sdk_sts::config::Credentials {
        let out = emulator_client!(self, aws_sdk_sts)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/TestChecks"))
            .role_session_name("plinth-tests")
            .send()
            .await
            .expect("assume a role in the emulator");
        let c = out.credentials().expect("credentials");
        aws_sdk_sts::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "emulator",
        )
    }
    pub fn dynamodb_in(
        &self,
        credentials: &aws_sdk_sts::config::Credentials,
    ) -> aws_sdk_dynamodb::Client {
        emulator_client_in!(self, aws_sdk_dynamodb, credentials)
    }
    pub fn ec2_in(&self, credentials: &aws_sdk_sts::config::Credentials) -> aws_sdk_ec2::Client {
        emulator_client_in!(self, aws_sdk_ec2, credentials)
    }
    pub fn tagging_in(
        &self,
        credentials: &aws_sdk_sts::config::Credentials,
    ) -> aws_sdk_resourcegroupstagging::Client {
        emulator_client_in!(self, aws_sdk_resourcegroupstagging, credentials)
    }

    /// What the tagging API finds in `region` tagged `plinth:stack` (any value, or `stack`):
    /// (ARN, tags), by ARN.
    pub async fn tagged(
        &self,
        region: &str,
        stack: Option<&str>,
    ) -> Vec<(String, std::collections::BTreeMap<String, String>)> {
        let client = emulator_client!(
            self,
            aws_sdk_resourcegroupstagging,
            |b: aws_sdk_resourcegroupstagging::config::Builder| b
                .region(Region::new(region.to_string()))
        );
        let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
            .key("plinth:stack")
            .set_values(stack.map(|s| vec![s.to_string()]))
            .build();
        let mut found = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let out = client
                .get_resources()
                .tag_filters(filter.clone())
                .set_pagination_token(page.clone())
                .send()
                .await
                .expect("tagging API");
            found.extend(out.resource_tag_mapping_list().iter().filter_map(|m| {
                let tags = m
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                Some((m.resource_arn()?.to_string(), tags))
            }));
            match out.pagination_token().filter(|t| !t.is_empty()) {
                Some(next) => page = Some(next.to_string()),
                None => break,
            }
        }
        found.sort();
        found
    }

    /// The state file as JSON.
    pub fn state(&self, stack: &str) -> serde_json::Value {
        let path = self.path(&format!(".plinth/{stack}/default/state.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("state is JSON")
    }
}

/// Security groups (id, name) tagged `plinth:stack = stack`.
pub async fn groups_of_stack(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<(String, String)> {
    let out = ec2
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:plinth:stack")
                .values(stack)
                .build(),
        )
        .send()
        .await
        .expect("describe groups");
    let mut groups: Vec<(String, String)> = out
        .security_groups()
        .iter()
        .map(|g| {
            (
                g.group_id().unwrap_or_default().to_string(),
                g.group_name().unwrap_or_default().to_string(),
            )
        })
        .collect();
    groups.sort();
    groups
}

/// Tables tagged `plinth:stack = stack`.
pub async fn tables_of_stack(ddb: &aws_sdk_dynamodb::Client, stack: &str) -> Vec<String> {
    let mut out = Vec::new();
    let names = ddb
        .list_tables()
        .send()
        .await
        .expect("list tables")
        .table_names()
        .to_vec();
    for name in names {
        let Ok(desc) = ddb.describe_table().table_name(&name).send().await else {
            continue;
        };
        let Some(arn) = desc.table().and_then(|t| t.table_arn()) else {
            continue;
        };
        // Other tests share the emulator: a table may go between listing and reading it.
        let Ok(tags) = ddb.list_tags_of_resource().resource_arn(arn).send().await else {
            continue;
        };
        if tags
            .tags()
            .iter()
            .any(|t| t.key() == "plinth:stack" && t.value() == stack)
        {
            out.push(name);
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("create folder");
        for entry in std::fs::read_dir(from).expect("read folder").flatten() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).expect("copy file");
    }
}
