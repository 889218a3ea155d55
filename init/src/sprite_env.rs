//! `sprite-env`: the sprite's own command for its management socket
//! (`/.sprite/run/api.sock`), for its user or an agent working inside:
//! checkpoints, services and keep-awake tasks, without any token. It is
//! sprite-init under another name, and speaks plain HTTP/1.1 to the socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

const SOCKET: &str = "/.sprite/run/api.sock";

const USAGE: &str = "\
usage: sprite-env COMMAND

  info                                   this sprite: status, URL, sleep times
  usage                                  seconds awake, disk bytes used
  checkpoints [list]                     checkpoints, newest first
  checkpoints create [-m COMMENT]        take a checkpoint now
  services [list]                        services and their state
  services create NAME [--http-port P] [--dir D] [--needs S]... -- CMD [ARG]...
  services start|stop|restart|delete|logs NAME
  keep-awake DURATION [--reason TEXT]    stay awake (90s, 30m, 2h) whatever the activity
  keep-awake --end ID                    end a keep-awake task early
  api METHOD PATH [JSON]                 any call the socket allows
";

/// Runs `sprite-env` with `args` (without the program name); the exit code.
pub fn main(args: Vec<String>) -> i32 {
    match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sprite-env: {e}");
            1
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (method, path, body): (&str, String, Option<String>) = match a.as_slice() {
        [] | ["help"] | ["-h"] | ["--help"] => {
            print!("{USAGE}");
            return Ok(());
        }
        ["info"] => ("GET", "/v1/info".into(), None),
        ["usage"] => ("GET", "/v1/usage".into(), None),
        ["checkpoints"] | ["checkpoints", "list"] => ("GET", "/v1/checkpoints".into(), None),
        ["checkpoints", "create"] => ("POST", "/v1/checkpoints".into(), Some("{}".into())),
        ["checkpoints", "create", "-m", comment] => (
            "POST",
            "/v1/checkpoints".into(),
            Some(serde_json::json!({ "comment": comment }).to_string()),
        ),
        ["services"] | ["services", "list"] => ("GET", "/v1/services".into(), None),
        ["services", "create", name, rest @ ..] => {
            let body = service_body(rest)?;
            (
                "PUT",
                format!("/v1/services/{name}?duration=2s"),
                Some(body),
            )
        }
        ["services", verb @ ("start" | "restart"), name] => (
            "POST",
            format!("/v1/services/{name}/{verb}?duration=2s"),
            None,
        ),
        ["services", "stop", name] => ("POST", format!("/v1/services/{name}/stop"), None),
        ["services", "delete", name] => ("DELETE", format!("/v1/services/{name}"), None),
        ["services", "logs", name] => ("GET", format!("/v1/services/{name}/logs"), None),
        ["keep-awake", "--end", id] => ("DELETE", format!("/v1/keep-awake/{id}"), None),
        ["keep-awake", duration, rest @ ..] => {
            let seconds = parse_duration(duration)?;
            let reason = match rest {
                [] => None,
                ["--reason", text] => Some(*text),
                _ => return Err(format!("unexpected {rest:?}\n{USAGE}")),
            };
            (
                "POST",
                "/v1/keep-awake".into(),
                Some(serde_json::json!({ "seconds": seconds, "reason": reason }).to_string()),
            )
        }
        ["api", method, path] => (method, path.to_string(), None),
        ["api", method, path, json] => (method, path.to_string(), Some(json.to_string())),
        _ => return Err(format!("unknown command\n{USAGE}")),
    };
    let (status, text) = call(method, &path, body.as_deref())?;
    if (200..300).contains(&status) {
        if !text.is_empty() {
            println!("{}", pretty(&text));
        }
        Ok(())
    } else {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        Err(message)
    }
}

/// `[--http-port P] [--dir D] [--needs S]... -- CMD [ARG]...` as a body.
fn service_body(rest: &[&str]) -> Result<String, String> {
    let mut body = serde_json::json!({});
    let mut needs = Vec::new();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        match *flag {
            "--" => break,
            "--http-port" => {
                let p: u16 = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--http-port: a port number")?;
                body["http_port"] = p.into();
            }
            "--dir" => body["dir"] = (*it.next().ok_or("--dir: a directory")?).into(),
            "--needs" => needs.push(*it.next().ok_or("--needs: a service")?),
            other => return Err(format!("unexpected {other:?}; the command goes after --")),
        }
    }
    let cmd: Vec<&str> = it.copied().collect();
    let (program, args) = cmd.split_first().ok_or("give the command after --")?;
    body["cmd"] = (*program).into();
    body["args"] = args.into();
    body["needs"] = needs.into();
    Ok(body.to_string())
}

fn parse_duration(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?}: a duration like 90s, 30m or 2h"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{text:?}: a duration like 90s, 30m or 2h")),
    };
    Ok(n * scale)
}

/// JSON pretty-printed; NDJSON and text as they are.
fn pretty(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_string()),
        Err(_) => text.trim_end().to_string(),
    }
}

/// One HTTP/1.1 exchange on the socket: the status and the body.
fn call(method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let mut conn = UnixStream::connect(SOCKET)
        .map_err(|e| format!("cannot reach {SOCKET}: {e} (is this a sprite?)"))?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: sprite\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())
        .and_then(|_| conn.write_all(body.as_bytes()))
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("a malformed answer")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("a malformed status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = &raw[end + 4..];
    let bytes = if chunked {
        let mut out = Vec::new();
        loop {
            let line_end = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("a malformed chunk")?;
            let size_text = String::from_utf8_lossy(&body[..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| "a malformed chunk size")?;
            body = &body[line_end + 2..];
            if size == 0 {
                break;
            }
            if body.len() < size {
                return Err("a truncated chunk".into());
            }
            out.extend_from_slice(&body[..size]);
            body = body.get(size + 2..).unwrap_or(&[]);
        }
        out
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_plain_and_chunked_are_read() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (200, "{}".to_string()));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (200, "abcde".to_string()));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn service_commands_become_bodies() {
        let b = service_body(&[
            "--http-port",
            "8000",
            "--needs",
            "db",
            "--",
            "python3",
            "-m",
            "x",
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["cmd"], "python3");
        assert_eq!(v["args"], serde_json::json!(["-m", "x"]));
        assert_eq!(v["http_port"], 8000);
        assert_eq!(v["needs"], serde_json::json!(["db"]));
        assert!(service_body(&["--"]).is_err());
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert!(parse_duration("soon").is_err());
    }
}
