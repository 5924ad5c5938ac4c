//! The network as real AWS's is: answers lost after the work was done, connections reset or
//! never answered, throttling storms. plinth's clients (as `plinth` makes them) against a
//! scripted HTTP server that answers each request as the script says, with the exact bodies
//! AWS sends; the rate limiter on a paused clock; and the real binary against an endpoint
//! that accepts connections and never answers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use plinth_aws::rate_limit::{error_code, is_throttling, RateLimiter};
use plinth_aws::{Aws, Persistence, Unanswered};
use plinth_core::resource::ErrorKind;

use crate::harness::{Env, Moto};
use crate::mock_support::{ec2_error, elasticache_error, json_error};

/// How the scripted server answers one request.
#[derive(Clone, Debug)]
enum Answer {
    /// Reads the request, then closes the connection without a word (the answer was lost).
    Close,
    /// Resets the connection with the request half read.
    Reset,
    /// Reads the request and never answers.
    Silent,
    /// An HTTP answer: status, content type, extra headers, body.
    Http(u16, &'static str, Vec<(&'static str, &'static str)>, String),
}

fn dynamodb(status: u16, body: &str) -> Answer {
    Answer::Http(
        status,
        "application/x-amz-json-1.0",
        vec![],
        body.to_string(),
    )
}

fn throttled() -> Answer {
    dynamodb(
        400,
        r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}"#,
    )
}

fn internal_error() -> Answer {
    dynamodb(
        500,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#,
    )
}

fn tables() -> Answer {
    dynamodb(200, r#"{"TableNames":["users"]}"#)
}

/// A server on a free loopback port answering requests in turn from `script` (the last answer
/// repeats), one request per connection.
struct Scripted {
    endpoint: String,
    requests: Arc<AtomicUsize>,
    /// What each request said (headers and body), in order.
    seen: Arc<Mutex<Vec<String>>>,
    /// Connections kept open by `Silent` answers.
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Scripted {
    fn start(script: Vec<Answer>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (count, keep, log) = (requests.clone(), held.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let answer = script
                    .get(n)
                    .or(script.last())
                    .cloned()
                    .unwrap_or(Answer::Close);
                answer_one(stream, answer, &keep, &log);
            }
        });
        Scripted {
            endpoint,
            requests,
            seen,
            _held: held,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

fn answer_one(
    mut stream: TcpStream,
    answer: Answer,
    held: &Mutex<Vec<TcpStream>>,
    seen: &Mutex<Vec<String>>,
) {
    if let Answer::Reset = answer {
        // Closing with the request still unread makes the kernel answer with RST.
        let mut first = [0u8; 16];
        let _ = stream.read(&mut first);
        return;
    }
    let request = read_request(&mut stream);
    seen.lock().expect("lock").push(request);
    match answer {
        Answer::Close | Answer::Reset => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Answer::Silent => held.lock().expect("lock").push(stream),
        Answer::Http(status, content_type, headers, body) => {
            let mut text = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\nx-amzn-requestid: 00000000-0000-0000-0000-000000000000\r\n",
                body.len()
            );
            for (k, v) in headers {
                text.push_str(&format!("{k}: {v}\r\n"));
            }
            text.push_str("\r\n");
            text.push_str(&body);
            let _ = stream.write_all(text.as_bytes());
        }
    }
}

/// Reads one request, its headers and as much body as its content-length says, and
/// returns it as text.
fn read_request(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    loop {
        let Ok(n) = stream.read(&mut buf) else {
            return String::from_utf8_lossy(&data).into_owned();
        };
        if n == 0 {
            return String::from_utf8_lossy(&data).into_owned();
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// plinth's AWS clients, made as `plinth` makes them, pointed at `endpoint`.
async fn aws_at(endpoint: &str, persistence: Persistence) -> Aws {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests());
    Aws::load_from(loader, persistence).await
}

fn persistence(max_attempts: u32, read_timeout: Duration) -> Persistence {
    Persistence {
        max_attempts,
        read_timeout,
        ..Persistence::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_resets_throttling_and_5xx_are_retried_well_past_three_attempts() {
    let server = Scripted::start(vec![
        Answer::Close,
        Answer::Reset,
        throttled(),
        internal_error(),
        throttled(),
        tables(),
    ]);
    let aws = aws_at(&server.endpoint, Persistence::default()).await;
    let out = aws
        .dynamodb("us-east-1")
        .list_tables()
        .send()
        .await
        .expect("answered in the end");
    assert_eq!(out.table_names(), ["users"]);
    assert_eq!(server.requests(), 6);
    assert_eq!((aws.stats.total(), aws.stats.attempts()), (1, 6));
}

#[tokio::test(flavor = "multi_thread")]
async fn max_attempts_bounds_the_retries_of_a_storm_and_the_error_is_the_throttling() {
    let server = Scripted::start(vec![throttled()]);
    let aws = aws_at(&server.endpoint, persistence(3, Duration::from_secs(60))).await;
    let err = aws
        .dynamodb("us-east-1")
        .list_tables()
        .send()
        .await
        .expect_err("still throttled after 3 attempts");
    let err = plinth_aws::errors::classify(err);
    assert_eq!(err.kind, ErrorKind::Retryable, "{err}");
    assert_eq!(err.code.as_deref(), Some("ThrottlingException"));
    assert_eq!(server.requests(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_aws_means_is_not_retried() {
    let server = Scripted::start(vec![dynamodb(
        400,
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"1 validation error detected"}"#,
    )]);
    let aws = aws_at(&server.endpoint, Persistence::default()).await;
    let err = aws
        .dynamodb("us-east-1")
        .list_tables()
        .send()
        .await
        .expect_err("invalid");
    assert_eq!(plinth_aws::errors::classify(err).kind, ErrorKind::Invalid);
    assert_eq!(server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_answers_times_out_is_retried_and_then_fails() {
    let server = Scripted::start(vec![Answer::Silent]);
    let aws = aws_at(&server.endpoint, persistence(2, Duration::from_millis(300))).await;
    let err = aws
        .dynamodb("us-east-1")
        .list_tables()
        .send()
        .await
        .expect_err("no answer ever");
    let err = plinth_aws::errors::classify(err);
    assert_eq!(err.kind, ErrorKind::Retryable, "{err}");
    assert!(err.message.contains("timeout"), "{err}");
    assert_eq!(server.requests(), 2, "the silent attempt was retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attempt_whose_answer_was_lost_is_seen_by_the_call_that_made_it() {
    let server = Scripted::start(vec![Answer::Close, tables(), tables()]);
    let aws = aws_at(&server.endpoint, Persistence::default()).await;
    let client = aws.dynamodb("us-east-1");
    let lost = Unanswered::default();
    client
        .list_tables()
        .customize()
        .interceptor(lost.clone())
        .send()
        .await
        .expect("answered on the second attempt");
    assert!(lost.seen());
    let clean = Unanswered::default();
    client
        .list_tables()
        .customize()
        .interceptor(clean.clone())
        .send()
        .await
        .expect("answered");
    assert!(!clean.seen());
}

// ---------------------------------------------------------------------------------------
// The rate limiter, on a paused clock

/// `n` answers, one every `every`, throttled where `throttled(i)` says.
async fn answers(
    limiter: &RateLimiter,
    n: usize,
    every: Duration,
    throttled: impl Fn(usize) -> bool,
) {
    for i in 0..n {
        tokio::time::advance(every).await;
        limiter.answered(throttled(i));
    }
}

#[tokio::test(start_paused = true)]
async fn sporadic_throttling_slows_nothing_and_a_storm_limits_the_rate_to_what_got_through() {
    let limiter = RateLimiter::default();
    // 40 answers a second, one in ten throttled: each is retried by itself, nobody waits.
    answers(&limiter, 200, Duration::from_millis(25), |i| i % 10 == 0).await;
    assert_eq!(limiter.rate(), None);
    let started = tokio::time::Instant::now();
    drop(limiter.wait_turn().await);
    assert_eq!(started.elapsed(), Duration::ZERO);

    // Then half of 40 a second are throttled: 20 a second get through; the limit is a
    // little under that.
    answers(&limiter, 82, Duration::from_millis(25), |i| i % 2 == 0).await;
    let rate = limiter.rate().expect("limited");
    assert!((15.0..=17.0).contains(&rate), "{rate}");
    // A second's worth of tokens at once, then one every sixteenth of a second.
    let started = tokio::time::Instant::now();
    for _ in 0..20 {
        drop(limiter.wait_turn().await);
    }
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(200)..=Duration::from_millis(300)).contains(&took),
        "20 requests at 16 a second, 16 of them at once: {took:?}"
    );
    let (throttled, waited) = limiter.totals();
    assert_eq!(throttled, 20 + 41);
    assert!(waited > Duration::ZERO);

    // Calm windows let the rate grow back until the limit is lifted.
    for _ in 0..12 {
        answers(&limiter, 40, Duration::from_millis(30), |_| false).await;
    }
    assert_eq!(limiter.rate(), None, "lifted");
}

#[tokio::test(start_paused = true)]
async fn nothing_getting_through_paces_at_the_floor_and_a_waiter_that_gives_up_costs_nothing() {
    let limiter = Arc::new(RateLimiter::default());
    answers(&limiter, 40, Duration::from_millis(30), |_| true).await;
    assert_eq!(limiter.rate(), Some(2.0), "the floor");
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        drop(limiter.wait_turn().await);
    }
    assert_eq!(started.elapsed(), Duration::from_secs(1), "two a second");

    // Ten callers give up waiting (their calls timed out); the next one waits only for the
    // next token, not behind them.
    let waiters = (0..10).map(|_| {
        let waiting = limiter.clone();
        tokio::time::timeout(Duration::from_millis(100), async move {
            drop(waiting.wait_turn().await);
        })
    });
    let gave_up = futures::future::join_all(waiters).await;
    assert!(gave_up.iter().all(Result::is_err), "{gave_up:?}");
    let started = tokio::time::Instant::now();
    drop(limiter.wait_turn().await);
    assert!(
        started.elapsed() <= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_has_so_many_requests_in_flight_fewer_in_a_storm_and_more_again_when_calm() {
    let limiter = RateLimiter::new(4);
    let turns = futures::future::join_all((0..4).map(|_| limiter.wait_turn())).await;
    // A fifth waits for one of the four to end, and goes as soon as it does.
    let fifth = tokio::time::timeout(Duration::from_secs(60), limiter.wait_turn()).await;
    assert!(fifth.is_err(), "four were in flight");
    let mut turns = turns.into_iter();
    let started = tokio::time::Instant::now();
    let (fifth, _) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(60), limiter.wait_turn()),
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(turns.next());
        }
    );
    assert!(fifth.is_ok(), "went when one ended");
    assert_eq!(started.elapsed(), Duration::from_millis(10));
    drop(fifth);
    drop(turns);

    // A storm halves what may be in flight, down to one.
    answers(&limiter, 40, Duration::from_millis(30), |_| true).await;
    assert_eq!(limiter.allowed_in_flight(), 2);
    answers(&limiter, 40, Duration::from_millis(30), |_| true).await;
    answers(&limiter, 40, Duration::from_millis(30), |_| true).await;
    assert_eq!(limiter.allowed_in_flight(), 1);
    let one = limiter.wait_turn().await;
    let second = tokio::time::timeout(Duration::from_secs(60), limiter.wait_turn()).await;
    assert!(second.is_err(), "one at a time in a storm");

    // A calm window lets a waiting request go while the first is still in flight.
    let (second, _) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(60), limiter.wait_turn()),
        answers(&limiter, 40, Duration::from_millis(30), |_| false)
    );
    assert!(second.is_ok(), "two may be in flight again");
    assert_eq!(limiter.allowed_in_flight(), 2);
    drop((one, second));
    // Calm windows double it back, never past the service's own number.
    for _ in 0..3 {
        answers(&limiter, 40, Duration::from_millis(30), |_| false).await;
    }
    assert_eq!(limiter.allowed_in_flight(), 4);
    let four = futures::future::join_all((0..4).map(|_| limiter.wait_turn())).await;
    let fifth = tokio::time::timeout(Duration::from_secs(60), limiter.wait_turn()).await;
    assert!(fifth.is_err(), "four again, not more");
    drop(four);
}

#[tokio::test(start_paused = true)]
async fn requests_in_flight_when_a_storm_comes_give_their_places_up_as_they_end() {
    let limiter = RateLimiter::new(4);
    let four = futures::future::join_all((0..4).map(|_| limiter.wait_turn())).await;
    answers(&limiter, 40, Duration::from_millis(30), |_| true).await;
    assert_eq!(limiter.allowed_in_flight(), 2);
    // Three of the four end: only one place is free for what comes next.
    let mut four = four.into_iter();
    for _ in 0..3 {
        drop(four.next());
    }
    let next = limiter.wait_turn().await;
    let another = tokio::time::timeout(Duration::from_secs(60), limiter.wait_turn()).await;
    assert!(
        another.is_err(),
        "two in flight: the last of the four and the next"
    );
    drop((next, four));
    assert_eq!(plinth_aws::rate_limit::requests_at_once("route53"), 2);
    assert_eq!(plinth_aws::rate_limit::requests_at_once("dynamodb"), 64);
}

// ---------------------------------------------------------------------------------------
// What "slow down" looks like in each protocol, with the bodies AWS sends

fn response(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body.to_string()),
    );
    for (k, v) in headers {
        response.headers_mut().insert(*k, *v);
    }
    response
}

#[test]
fn throttling_is_recognised_in_every_protocol_and_other_errors_are_not() {
    let throttles = [
        json_error(400, "ThrottlingException", "Rate exceeded"),
        response(
            400,
            &[("content-type", "application/x-amz-json-1.0")],
            r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}"#,
        ),
        response(
            400,
            &[("content-type", "application/x-amz-json-1.1")],
            r#"{"__type":"ThrottledException","Message":"Rate exceeded"}"#,
        ),
        ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."),
        elasticache_error(400, "Throttling", "Rate exceeded"),
        response(
            503,
            &[("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>1</RequestId><HostId>2</HostId></Error>",
        ),
        response(
            429,
            &[("x-amzn-errortype", "TooManyRequestsException")],
            r#"{"Reason":"CallerRateLimitExceeded","Type":"User","message":"Rate exceeded"}"#,
        ),
        response(
            400,
            &[("content-type", "text/xml")],
            "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>",
        ),
    ];
    for answer in &throttles {
        assert!(is_throttling(answer), "{:?}", error_code(answer));
    }
    let others = [
        json_error(400, "ValidationException", "1 validation error detected"),
        json_error(400, "ResourceInUseException", "Table already exists: users"),
        ec2_error(
            400,
            "InvalidGroup.Duplicate",
            "The security group 'a' already exists",
        ),
        elasticache_error(500, "InternalFailure", "An internal error occurred."),
        response(200, &[], "{}"),
    ];
    for answer in &others {
        assert!(!is_throttling(answer), "{:?}", error_code(answer));
    }
    assert_eq!(
        error_code(&ec2_error(503, "RequestLimitExceeded", "x")).as_deref(),
        Some("RequestLimitExceeded")
    );
}

// ---------------------------------------------------------------------------------------
// The binary against an endpoint that never answers

/// A stack whose plan reads (the default VPC lookup) and whose apply creates a table.
const READS_AND_CREATES: &str = "stack: hung\nregion: us-east-1\nresources:\n  vpc:\n    type: ec2.default_vpc\n  table:\n    type: dynamodb.table\n    name: hung-table\n    partition_key: { name: Id, type: S }\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_answers_cannot_hang_plan_apply_or_destroy() {
    // Applied for real first, so destroy has something to read and delete.
    let moto = Moto::start(0);
    let mut env = Env::with_emulator(&moto);
    env.write("plinth.yaml", READS_AND_CREATES);
    env.plinth(&["apply", "--yes"]).ok();

    let silent = Scripted::start(vec![Answer::Silent]);
    env.endpoint = silent.endpoint.clone();
    let hung = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--read-timeout", "300ms", "--max-attempts", "2"]);
        env.plinth(&all).expect_code(1)
    };
    for args in [&["plan"][..], &["apply", "--yes"], &["destroy", "--yes"]] {
        let run = hung(args);
        assert!(
            run.stderr.contains("timeout") || run.stderr.contains("timed out"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(silent.requests() >= 6, "every command tried, and retried");
    // Nothing was lost: the state still holds the table, and the real emulator still has it.
    env.endpoint = moto.endpoint.clone();
    env.plinth(&["plan", "--detailed-exitcode"]).ok();
}

// ---------------------------------------------------------------------------------------
// A bucket whose CreateBucket answer was lost

fn s3(status: u16, body: &str) -> Answer {
    Answer::Http(status, "application/xml", vec![], body.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_whose_create_answer_was_lost_is_carried_on_with_not_refused_as_taken() {
    use plinth_aws::resources::s3_bucket::Bucket;
    use plinth_core::resource::{NormalizeContext, OpContext, ResourceType};
    // Outside us-east-1 a second CreateBucket of one's own bucket is BucketAlreadyOwnedByYou;
    // its tags are set after the create, so they cannot say whose it is.
    let server = Scripted::start(vec![
        Answer::Close,
        s3(
            409,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>BucketAlreadyOwnedByYou</Code><Message>Your previous request to create the named bucket succeeded and you already own it.</Message><BucketName>lost-answer-site</BucketName><RequestId>1</RequestId><HostId>2</HostId></Error>",
        ),
        s3(200, ""),
    ]);
    let aws = Arc::new(aws_at(&server.endpoint, Persistence::default()).await);
    let bucket = Bucket::new(aws.clone());
    let mut props = serde_json::json!({
        "name": "lost-answer-site",
        "tags": {"plinth:stack": "lab", "plinth:workspace": "default", "plinth:resource": "site"},
    })
    .as_object()
    .cloned()
    .expect("props");
    bucket
        .normalize(&mut props, &NormalizeContext::default())
        .expect("normalize");
    let ctx = OpContext::new("eu-west-1", "site").with_environment("lab", "default");
    let observed = bucket.create(&ctx, &props).await.expect("carried on");
    assert_eq!(observed.id, "lost-answer-site");
    // The lost CreateBucket, its retry, then the bucket's settings and tags.
    assert!(server.requests() >= 4, "{}", server.requests());
}

fn kms(body: &str) -> Answer {
    Answer::Http(200, "application/x-amz-json-1.1", vec![], body.to_string())
}

fn key_json(id: &str) -> String {
    format!(
        r#"{{"KeyMetadata":{{"KeyId":"{id}","Arn":"arn:aws:kms:us-east-1:123456789012:key/{id}","KeyState":"Enabled","Enabled":true,"KeyUsage":"ENCRYPT_DECRYPT","KeySpec":"SYMMETRIC_DEFAULT","KeyManager":"CUSTOMER","Description":"lab"}}}}"#
    )
}

/// CreateKey takes no idempotency token: when its first answer is lost the SDK sends it
/// again and KMS makes a second key. The keys carry the create's token; the one the answer
/// did not name is scheduled for deletion, so one key is left, not two.
#[tokio::test(flavor = "multi_thread")]
async fn a_kms_key_a_lost_answer_made_twice_is_left_once() {
    use plinth_aws::resources::kms_key::KmsKey;
    use plinth_core::resource::{NormalizeContext, OpContext, ResourceType};
    const FIRST: &str = "11111111-1111-1111-1111-111111111111";
    const SECOND: &str = "22222222-2222-2222-2222-222222222222";
    let token = "0123456789abcdef0123456789abcdef";
    let tags = format!(
        r#"{{"Tags":[{{"TagKey":"plinth:stack","TagValue":"lab"}},{{"TagKey":"plinth:workspace","TagValue":"default"}},{{"TagKey":"plinth:resource","TagValue":"key"}},{{"TagKey":"plinth:create-token","TagValue":"{token}"}}],"Truncated":false}}"#
    );
    let server = Scripted::start(vec![
        // CreateKey: KMS made FIRST, the answer was lost; the SDK's second attempt made SECOND.
        Answer::Close,
        kms(&key_json(SECOND)),
        // Looking for what this create made: both keys, each carrying the create's token.
        kms(&format!(
            r#"{{"Keys":[{{"KeyId":"{FIRST}"}},{{"KeyId":"{SECOND}"}}],"Truncated":false}}"#
        )),
        kms(&tags),
        kms(&key_json(FIRST)),
        kms(&tags),
        kms(&key_json(SECOND)),
        // ScheduleKeyDeletion of FIRST.
        kms(&format!(
            r#"{{"KeyId":"{FIRST}","DeletionDate":1.7e9,"KeyState":"PendingDeletion","PendingWindowInDays":7}}"#
        )),
    ]);
    let aws = Arc::new(aws_at(&server.endpoint, Persistence::default()).await);
    let key = KmsKey::new(aws);
    let mut props = serde_json::json!({
        "description": "lab",
        "tags": {"plinth:stack": "lab", "plinth:workspace": "default", "plinth:resource": "key"},
    })
    .as_object()
    .cloned()
    .expect("props");
    key.normalize(&mut props, &NormalizeContext::default())
        .expect("normalize");
    let ctx = OpContext::new("us-east-1", "key")
        .with_environment("lab", "default")
        .with_create_token(token.to_string());
    let made = key.create(&ctx, &props).await.expect("created");
    assert_eq!(made.id, SECOND, "the key the answer named is kept");
    let seen = server.seen();
    let scheduled: Vec<&String> = seen
        .iter()
        .filter(|r| r.contains("TrentService.ScheduleKeyDeletion"))
        .collect();
    assert_eq!(scheduled.len(), 1, "{seen:#?}");
    assert!(
        scheduled[0].contains(FIRST) && scheduled[0].contains("\"PendingWindowInDays\":7"),
        "{}",
        scheduled[0]
    );
    let created: Vec<&String> = seen
        .iter()
        .filter(|r| r.contains("TrentService.CreateKey"))
        .collect();
    assert!(
        created.iter().all(|r| r.contains(token)),
        "every attempt carries the token tag"
    );
}
