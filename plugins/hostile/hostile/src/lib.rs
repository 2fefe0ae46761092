//! A cleaner that does what its batch's first column name says, so the host's sandbox can be
//! tested against real escape attempts. The outcome comes back as the single column name of
//! an empty batch: `ok:<detail>` or `err:<detail>`.
//!
//! Actions: `spin` (loops forever), `bomb` (allocates until stopped), `panic`, `count`
//! (calls on this instance so far), `read:<path>`, `connect:<ip:port>`, `env`,
//! `print:<text>` (stdout), `log:<text>` (host log).

use infra_sdk::{Batch, Cleaner, Plugin, PluginInfo, Report};

#[derive(Default)]
struct Hostile {
    calls: u64,
}

impl Plugin for Hostile {
    fn info() -> PluginInfo {
        infra_sdk::info("hostile", "0.1.0", "misbehaves on request (sandbox tests)")
    }
}

fn act(action: &str, calls: u64) -> Result<String, String> {
    let (verb, arg) = action.split_once(':').unwrap_or((action, ""));
    match verb {
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "panic" => panic!("hostile plugin panics on purpose"),
        "count" => Ok(calls.to_string()),
        "read" => std::fs::read_to_string(arg)
            .map(|s| s.len().to_string())
            .map_err(|e| e.to_string()),
        "connect" => connect(arg),
        "env" => Ok(std::env::vars().count().to_string()),
        "print" => {
            println!("{arg}");
            Ok(String::new())
        }
        "log" => {
            infra_sdk::log::info(arg);
            Ok(String::new())
        }
        other => Err(format!("unknown action {other}")),
    }
}

fn connect(addr: &str) -> Result<String, String> {
    use wasi::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    let addr: std::net::SocketAddrV4 = addr.parse().map_err(|e| format!("bad address: {e}"))?;
    let o = addr.ip().octets();
    let net = wasi::sockets::instance_network::instance_network();
    let sock = wasi::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4)
        .map_err(|e| format!("create: {e:?}"))?;
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: addr.port(),
        address: (o[0], o[1], o[2], o[3]),
    });
    sock.start_connect(&net, remote)
        .map_err(|e| format!("connect: {e:?}"))?;
    sock.subscribe().block();
    sock.finish_connect()
        .map(|_| "connected".to_string())
        .map_err(|e| format!("connect: {e:?}"))
}

impl Cleaner for Hostile {
    fn apply(&mut self, batch: Batch) -> Result<(Batch, Report), String> {
        self.calls += 1;
        let action = batch.columns.first().cloned().unwrap_or_default();
        let outcome = match act(&action, self.calls) {
            Ok(s) => format!("ok:{s}"),
            Err(e) => format!("err:{e}"),
        };
        let out = Batch {
            columns: vec![outcome],
            features: Vec::new(),
            labels: Vec::new(),
        };
        let report = Report {
            rows_in: 0,
            rows_out: 0,
            dropped: Vec::new(),
            values_changed: 0,
        };
        Ok((out, report))
    }
}

infra_sdk::export_cleaner!(Hostile);
