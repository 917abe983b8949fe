//! Can user `postgres` log in without a password? A look at the first reply
//! of PostgreSQL's startup handshake answers it without a client library.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What a server at an address says to a password-less login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginProbe {
    /// Nothing listens there.
    NoServer,
    /// PostgreSQL lets the user in without a password (trust).
    Trusted,
    /// PostgreSQL asks for a password (scram, md5, cleartext).
    NeedsPassword,
    /// PostgreSQL refuses the login outright (no such role, no pg_hba entry).
    Refused(String),
    /// Something else listens there.
    NotPostgres,
}

/// Sends a protocol 3.0 startup message for `user` (database `postgres`) and
/// reads the first reply, then hangs up.
pub fn probe_login(addr: SocketAddr, user: &str) -> LoginProbe {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return LoginProbe::NoServer;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
    if stream.write_all(&startup_message(user)).is_err() {
        return LoginProbe::NotPostgres;
    }
    let verdict = match read_message(&mut stream) {
        Some((kind, body)) => read_reply(kind, &body),
        None => LoginProbe::NotPostgres,
    };
    if verdict != LoginProbe::Trusted {
        return verdict;
    }
    // Trust answers before the role is checked: read on to ReadyForQuery
    // ('Z') or the error that ends the session ('E').
    for _ in 0..256 {
        match read_message(&mut stream) {
            Some((b'Z', _)) => {
                // Terminate ('X'): leave no half-open session behind.
                let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
                return LoginProbe::Trusted;
            }
            Some((b'E', body)) => return read_reply(b'E', &body),
            Some(_) => {}
            None => break,
        }
    }
    LoginProbe::NotPostgres
}

/// One backend message: its type byte and body.
fn read_message(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0_u8; 5];
    stream.read_exact(&mut header).ok()?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut body = vec![0_u8; length.checked_sub(4)?.min(64 * 1024)];
    stream.read_exact(&mut body).ok()?;
    Some((header[0], body))
}

fn startup_message(user: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608_u32.to_be_bytes()); // protocol 3.0
    for (key, value) in [("user", user), ("database", "postgres")] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = u32::try_from(body.len() + 4).unwrap_or(u32::MAX).to_be_bytes().to_vec();
    message.extend(body);
    message
}

/// Reads the server's first message: `R` (authentication request) or `E` (error).
fn read_reply(kind: u8, body: &[u8]) -> LoginProbe {
    match (kind, body) {
        (b'R', [a, b, c, d, ..]) => match u32::from_be_bytes([*a, *b, *c, *d]) {
            0 => LoginProbe::Trusted,
            3 | 5 | 10 => LoginProbe::NeedsPassword,
            other => LoginProbe::Refused(format!("asks for an unsupported authentication method ({other})")),
        },
        (b'E', fields) => {
            // Error fields: a type byte, then a NUL-terminated string; 'M' is the message.
            let message = fields
                .split(|b| *b == 0)
                .find_map(|field| field.strip_prefix(b"M"))
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .unwrap_or_else(|| "refused the login".to_owned());
            LoginProbe::Refused(message)
        }
        _ => LoginProbe::NotPostgres,
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// A fake server that answers the startup message with `reply`.
    fn server_replying(reply: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut length = [0_u8; 4];
            stream.read_exact(&mut length).unwrap();
            let mut rest = vec![0_u8; u32::from_be_bytes(length) as usize - 4];
            stream.read_exact(&mut rest).unwrap();
            assert_eq!(&rest[..4], &196_608_u32.to_be_bytes(), "protocol 3.0");
            assert!(rest.windows(14).any(|w| w == b"user\0postgres\0"));
            stream.write_all(&reply).unwrap();
        });
        addr
    }

    fn auth(code: u32) -> Vec<u8> {
        let mut reply = vec![b'R', 0, 0, 0, 8];
        reply.extend_from_slice(&code.to_be_bytes());
        reply
    }

    #[test]
    fn trust_scram_md5_and_errors_are_told_apart() {
        let mut ready = auth(0);
        ready.extend_from_slice(&[b'S', 0, 0, 0, 8, b'a', 0, b'b', 0]); // ParameterStatus a=b
        ready.extend_from_slice(&[b'Z', 0, 0, 0, 5, b'I']); // ReadyForQuery, idle
        assert_eq!(probe_login(server_replying(ready), "postgres"), LoginProbe::Trusted);
        let mut then_error = auth(0);
        then_error.extend_from_slice(&[b'E', 0, 0, 0, 11, b'M', b'g', b'o', b'n', b'e', 0, 0]);
        assert_eq!(probe_login(server_replying(then_error), "postgres"), LoginProbe::Refused("gone".into()));
        assert_eq!(probe_login(server_replying(auth(10)), "postgres"), LoginProbe::NeedsPassword);
        assert_eq!(probe_login(server_replying(auth(5)), "postgres"), LoginProbe::NeedsPassword);
        let mut error = b"SFATAL\0C28000\0Mno pg_hba.conf entry\0\0".to_vec();
        let mut reply = vec![b'E'];
        reply.extend_from_slice(&u32::try_from(error.len() + 4).unwrap().to_be_bytes());
        reply.append(&mut error);
        assert_eq!(
            probe_login(server_replying(reply), "postgres"),
            LoginProbe::Refused("no pg_hba.conf entry".into())
        );
        assert_eq!(
            probe_login(server_replying(b"HTTP/1.1 400".to_vec()), "postgres"),
            LoginProbe::NotPostgres
        );
    }
}
