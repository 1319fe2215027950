//! Hostile clients at the connection level: slow or idle connections are
//! closed, a trickled body gets 408, connections beyond `MAX_CONNECTIONS`
//! are turned away on both ports, and handlers that block every thread of
//! the main runtime leave health, status and execute answering.
//!
//! The clients here are plain blocking sockets with read timeouts: every
//! wait is bounded, and a blocked runtime cannot stall the test's client.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Fixture, Harness, Output, ProduceResponse};
use svcgen_runtime::testing::TestService;
use svcgen_runtime::{Config, Definition, MethodKind};

/// The longest any read here waits.
const READ_WAIT: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_WAIT)).expect("timeout");
    stream
}

/// Reads until the peer closes (or [`READ_WAIT`] passes) and returns what
/// came, and whether the connection was closed.
fn read_to_close(stream: &mut TcpStream) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (String::from_utf8_lossy(&got).into_owned(), false)
            }
            // Reset by the peer: closed.
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
}

/// One request on a fresh connection that asks to be closed after it;
/// returns the whole answer.
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut stream = connect(addr);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body.as_bytes()).expect("write");
    let (answer, closed) = read_to_close(&mut stream);
    assert!(
        closed,
        "{method} {path}: no complete answer within {READ_WAIT:?}: {answer:?}"
    );
    answer
}

fn quick_config() -> Config {
    Config {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

#[tokio::test]
async fn slow_headers_idle_keep_alive_and_silent_grpc_connections_are_closed() {
    let service = Harness::start_with(quick_config()).await;
    let (http, grpc) = (service.http_addr(), service.grpc_addr());
    tokio::task::spawn_blocking(move || {
        // Headers that never end (slowloris).
        let mut slow = connect(http);
        slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
            .expect("write");
        let (_, closed) = read_to_close(&mut slow);
        assert!(closed, "a connection with unfinished headers stayed open");

        // A keep-alive connection left idle after one answer.
        let mut idle = connect(http);
        idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .expect("write");
        let (answer, closed) = read_to_close(&mut idle);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(closed, "an idle keep-alive connection stayed open");

        // A data-port connection that never says a word.
        let mut silent = connect(grpc);
        let (_, closed) = read_to_close(&mut silent);
        assert!(closed, "a silent gRPC connection stayed open");
    })
    .await
    .expect("the clients");
    service.stop().await;
}

/// Reads one `/health` answer from a keep-alive connection.
fn read_health(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(br#"{"status":"ok"}"#) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn each_request_on_a_connection_gets_the_whole_header_timeout() {
    // The timeout is 1 s; requests 0.6 s apart keep the connection open
    // past the first request's deadline, and the last answer is followed
    // by a whole second for the next headers.
    let service = Harness::start_with(quick_config()).await;
    let http = service.http_addr();
    tokio::task::spawn_blocking(move || {
        let mut stream = connect(http);
        for round in 0..4 {
            if round > 0 {
                std::thread::sleep(Duration::from_millis(600));
            }
            stream
                .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                .expect("write");
            let answer = read_health(&mut stream);
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "round {round}: {answer:?}"
            );
        }
        let answered = std::time::Instant::now();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
            .expect("write");
        let (_, closed) = read_to_close(&mut stream);
        let waited = answered.elapsed();
        assert!(closed, "unfinished headers kept the connection open");
        assert!(
            waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
            "closed {waited:?} after the last answer, for a 1 s header timeout"
        );
    })
    .await
    .expect("the client");
    service.stop().await;
}

#[tokio::test]
async fn a_trickled_execute_body_gets_a_json_408() {
    let service = Harness::start_with(quick_config()).await;
    let http = service.http_addr();
    tokio::task::spawn_blocking(move || {
        let mut stream = connect(http);
        stream
            .write_all(
                b"POST /control/execute HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  content-length: 200\r\n\r\n{\"method\":",
            )
            .expect("write");
        let (answer, _) = read_to_close(&mut stream);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains(r#"{"detail":"the request body did not arrive within 1s (REQUEST_BODY_TIMEOUT_SECS)"}"#),
            "{answer}"
        );
    })
    .await
    .expect("the client");
    service.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_turned_away_on_both_ports() {
    let service = Harness::start_with(Config {
        max_connections: 3,
        ..Config::default()
    })
    .await;
    let (http, grpc) = (service.http_addr(), service.grpc_addr());
    tokio::task::spawn_blocking(move || {
        // Three held connections, each shown to be served.
        let mut held: Vec<TcpStream> = (0..3)
            .map(|_| {
                let mut stream = connect(http);
                stream
                    .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                    .expect("write");
                let mut buf = [0u8; 512];
                let n = stream.read(&mut buf).expect("an answer");
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
                stream
            })
            .collect();
        let answer = request(http, "GET", "/health", "");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        assert!(answer.ends_with(
            r#"{"detail":"too many open connections (MAX_CONNECTIONS): retry shortly"}"#
        ));
        // Room again once one closes.
        drop(held.pop());
        let mut answered = String::new();
        for _ in 0..100 {
            answered = request(http, "GET", "/health", "");
            if answered.starts_with("HTTP/1.1 200") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

        // The data port closes a connection beyond the cap at once.
        let _grpc_held: Vec<TcpStream> = (0..3).map(|_| connect(grpc)).collect();
        let mut turned_away = connect(grpc);
        let (_, closed) = read_to_close(&mut turned_away);
        assert!(closed, "a fourth gRPC connection was kept");
    })
    .await
    .expect("the clients");
    service.stop().await;
}

/// A long method whose handler blocks its runtime thread (no
/// `spawn_blocking`) until the test lets it go.
const BLOCKER: &str = "SvcgenBlocker";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_blocking_every_runtime_thread_do_not_stall_health_status_or_execute() {
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let entered_tx = Arc::new(Mutex::new(entered_tx));
    let release_rx = Arc::new(Mutex::new(release_rx));
    let mut methods = Fixture::methods();
    methods.add_served_by(BLOCKER, "Produce", MethodKind::Long, move |_ctx| {
        let (entered_tx, release_rx) = (entered_tx.clone(), release_rx.clone());
        async move {
            let _ = entered_tx.lock().map(|tx| tx.send(()));
            // Blocks this worker thread: exactly what handlers must not do.
            let _ = release_rx
                .lock()
                .map(|rx| rx.recv_timeout(Duration::from_secs(60)));
            Ok(Output::Produce(ProduceResponse::default()))
        }
    });
    let service = TestService::start_with::<Fixture>(Config::default(), methods).await;
    let http = service.http_addr();
    let execute = |task: &str| {
        let body = format!(r#"{{"method":"{BLOCKER}","workflow_id":"w","task_id":"{task}"}}"#);
        request(http, "POST", "/control/execute", &body)
    };
    // The test's own thread is not one of the runtime's workers, and its
    // clients are blocking sockets: nothing here needs the runtime.
    let first = execute("t1");
    assert!(first.contains(r#""status":"running""#), "{first}");
    entered
        .recv_timeout(READ_WAIT)
        .expect("the first handler to start");
    // The second blocks on the first's lock of the release channel: both
    // worker threads are then blocked.
    let second = execute("t2");
    assert!(second.contains(r#""status":"running""#), "{second}");
    entered
        .recv_timeout(READ_WAIT)
        .expect("the second handler to start");

    let health = request(http, "GET", "/health", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let poll_id = first
        .split(r#""task_id":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a poll id");
    let status = request(http, "GET", &format!("/control/status/{poll_id}"), "");
    assert!(status.contains(r#""status":"running""#), "{status}");
    let third = execute("t3");
    assert!(third.contains(r#""status":"running""#), "{third}");

    for _ in 0..3 {
        let _ = release.send(());
    }
    entered
        .recv_timeout(READ_WAIT)
        .expect("the third handler to start once released");
    service.stop().await;
}

/// Set in a child process of this test binary that serves with few file
/// descriptors.
const FEW_FDS_CHILD: &str = "SVCGEN_FEW_FDS_CHILD";

/// The child's side of the file-descriptor test (does nothing in a normal
/// run): a service that logs as a generated one does, prints its ports,
/// and serves until its stdin closes (at most a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_with_few_file_descriptors() {
    if std::env::var(FEW_FDS_CHILD).is_err() {
        return;
    }
    svcgen_runtime::init_tracing();
    let config = Config {
        host: [127, 0, 0, 1].into(),
        http_port: Some(0),
        grpc_port: Some(0),
        ..Config::default()
    };
    let service = svcgen_runtime::run_with::<Fixture>(config, Fixture::methods())
        .await
        .expect("the service starts");
    println!(
        "ports {} {}",
        service.http_addr().port(),
        service.grpc_addr().port()
    );
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        // Ends when the parent closes stdin (read_line returns).
        tokio::task::spawn_blocking(|| {
            let mut rest = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut rest);
        })
        .await
    })
    .await;
    service.shutdown().await.ok();
}

/// CPU time (user + system) the process `pid` has used, in clock ticks.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the child's stat");
    // Fields after the command name (which may hold spaces) end with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat; 12 and 13 here.
    fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn out_of_file_descriptors_the_service_logs_backs_off_and_recovers() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Instant;

    if std::env::var(FEW_FDS_CHILD).is_ok() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" "$@""#)
        .arg(exe)
        .args(["child_with_few_file_descriptors", "--exact", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(FEW_FDS_CHILD, "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("the child's stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |what: &str| -> String {
        let deadline = Instant::now() + READ_WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        panic!("the child never printed {what:?}");
    };
    let ports = next_line("ports ");
    let ports: Vec<u16> = ports
        .rsplit("ports ")
        .next()
        .unwrap_or("")
        .split(' ')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    let (http, grpc): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], ports[0]).into(),
        ([127, 0, 0, 1], ports[1]).into(),
    );

    // More connections than the child has descriptors, on both ports.
    let flood: Vec<TcpStream> = (0..80)
        .flat_map(|_| [TcpStream::connect(http), TcpStream::connect(grpc)])
        .filter_map(Result::ok)
        .collect();
    let line = next_line("accepting connections failed");
    assert!(line.contains("WARN"), "{line}");
    // Backing off, not spinning: the bug this guards against used a whole
    // core. Without the backoff this loop still costs ~25 ticks (12% of a
    // core) and thousands of log lines in the 2 s; with it, a tick or two
    // and a line per pause (10 ms doubling to 1 s: about 8 a port).
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(child.id()) - before;
    let logged = lines
        .try_iter()
        .filter(|line| line.contains("accepting connections failed"))
        .count();
    assert!(
        used < 12,
        "{used} ticks of CPU in 2 s while out of descriptors"
    );
    assert!(
        logged < 40,
        "{logged} log lines in 2 s while out of descriptors"
    );

    // Once the flood is gone, the service answers again.
    drop(flood);
    let mut answer = String::new();
    for _ in 0..100 {
        let mut stream = connect(http);
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .expect("write");
        answer = read_to_close(&mut stream).0;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "after the flood: {answer:?}"
    );
}
