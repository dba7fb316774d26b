//! Who sent a request and which URL it addressed.
//!
//! The client address is the peer's, unless the peer is a configured trusted proxy
//! (`--trusted-proxies`): then it is the right-most address of `X-Forwarded-For` (or of
//! `Forwarded: for=`) that is not itself a trusted proxy. The external base URL of responses
//! (`result_url`, TUS `Location`, `url` fields) is `--public-url` if set; else, from a trusted
//! proxy, its `X-Forwarded-Proto` / `X-Forwarded-Host` (or `Forwarded: proto= host=`); else
//! `http://` + `Host`. Headers from anyone else are ignored, so a client cannot choose the
//! address it is counted under or the URLs stored for other users.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::{Authority, Scheme};
use axum::http::{header, HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use super::AppState;

/// A bad `--trusted-proxies` or `--public-url` value.
#[derive(Debug, thiserror::Error)]
pub enum NetConfigError {
    /// An entry is neither an address nor a CIDR range.
    #[error(
        "invalid --trusted-proxies entry '{0}': expected an IP address or a CIDR range such as 10.0.0.0/8"
    )]
    Proxy(String),
    /// The public URL is not an absolute http(s) URL without query or credentials.
    #[error("invalid --public-url '{url}': {why} (expected e.g. https://cvat.example.com)")]
    PublicUrl {
        /// The value given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// The parsed network settings: trusted proxies and the public URL.
#[derive(Debug, Clone, Default)]
pub(crate) struct Network {
    proxies: Vec<IpNet>,
    /// Without a trailing slash.
    public_url: Option<String>,
}

/// The client address of a request (see the module docs), in the request extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub IpAddr);

/// The external base URL of a request (`scheme://host[:port][/prefix]`, no trailing slash), in
/// the request extensions.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl(pub String);

impl Network {
    /// Parses and validates `--trusted-proxies` and `--public-url`.
    pub(crate) fn from_config(
        trusted: &[String],
        public_url: Option<&str>,
    ) -> Result<Network, NetConfigError> {
        let proxies = trusted
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| NetConfigError::Proxy(s.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        let public_url = public_url.map(parse_public_url).transpose()?;
        Ok(Network {
            proxies,
            public_url,
        })
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.proxies.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that arrived from `peer`.
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusted(peer) {
            return peer;
        }
        let xff = joined(headers, "x-forwarded-for");
        let hops: Vec<String> = match xff {
            Some(v) => v.split(',').map(|s| s.trim().to_owned()).collect(),
            None => forwarded_elements(headers)
                .into_iter()
                .filter_map(|e| param(&e, "for"))
                .collect(),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An address we cannot read ends the walk at the last one we could.
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.trusted(ip) {
                return ip;
            }
        }
        client
    }

    /// The external base URL of a request that arrived from `peer`.
    pub(crate) fn base_url(&self, peer: IpAddr, headers: &HeaderMap, uri: &Uri) -> String {
        if let Some(u) = &self.public_url {
            return u.clone();
        }
        let mut scheme = None;
        let mut host = None;
        if self.trusted(peer) {
            let last_forwarded = forwarded_elements(headers).pop();
            scheme = last_value(headers, "x-forwarded-proto")
                .or_else(|| last_forwarded.as_deref().and_then(|e| param(e, "proto")))
                .map(|s| s.to_ascii_lowercase())
                .filter(|s| s == "http" || s == "https");
            host = last_value(headers, "x-forwarded-host")
                .or_else(|| last_forwarded.as_deref().and_then(|e| param(e, "host")))
                .filter(|h| valid_host(h));
        }
        let host = host
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| valid_host(h))
                    .map(str::to_owned)
            })
            .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{}://{host}", scheme.as_deref().unwrap_or("http"))
    }
}

fn parse_public_url(s: &str) -> Result<String, NetConfigError> {
    let bad = |why| NetConfigError::PublicUrl {
        url: s.to_owned(),
        why,
    };
    let uri: Uri = s.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme() {
        Some(sc) if *sc == Scheme::HTTP || *sc == Scheme::HTTPS => {}
        _ => return Err(bad("the scheme must be http or https")),
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("credentials are not allowed"));
    }
    if authority.host().is_empty() {
        return Err(bad("no host"));
    }
    if uri.query().is_some() || s.contains('#') {
        return Err(bad("a query or fragment is not allowed"));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// A `Host`-like value we are willing to copy into URLs: `host[:port]`, nothing else.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && !h.contains('@')
        && h.parse::<Authority>()
            .is_ok_and(|a| a.as_str() == h && !a.host().is_empty())
}

/// All values of a header joined with `,` (a list header may be split over several lines).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The right-most element of a list header (the one the nearest proxy added).
fn last_value(headers: &HeaderMap, name: &str) -> Option<String> {
    joined(headers, name)?
        .rsplit(',')
        .next()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The elements of the `Forwarded` headers (RFC 7239), split on commas outside quotes.
fn forwarded_elements(headers: &HeaderMap) -> Vec<String> {
    let Some(all) = joined(headers, "forwarded") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let (mut cur, mut quoted) = (String::new(), false);
    for c in all.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A parameter of one `Forwarded` element (`for=`, `proto=`, `host=`), unquoted.
fn param(element: &str, name: &str) -> Option<String> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// An address in a forwarding chain: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            s.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })
        .map(|ip: IpAddr| ip.to_canonical())
}

/// Middleware: puts the request's [`ClientIp`] and [`BaseUrl`] in its extensions.
pub(crate) async fn annotate(
    State(st): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let client = st.net.client_ip(peer, req.headers());
    let base = st.net.base_url(peer, req.headers(), req.uri());
    req.extensions_mut().insert(ClientIp(client));
    req.extensions_mut().insert(BaseUrl(base));
    next.run(req).await
}

/// The [`BaseUrl`] of a request (set by [`annotate`]).
pub(crate) fn base_of(ext: &axum::http::Extensions) -> &str {
    ext.get::<BaseUrl>()
        .map(|b| b.0.as_str())
        .unwrap_or("http://localhost")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn net(proxies: &[&str]) -> Network {
        let list: Vec<String> = proxies.iter().map(|s| s.to_string()).collect();
        Network::from_config(&list, None).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn config_is_validated() {
        assert!(Network::from_config(&["10.0.0.0/8".into(), " 192.0.2.1 ".into()], None).is_ok());
        assert!(Network::from_config(&["2001:db8::/32".into(), "".into()], None).is_ok());
        let e = Network::from_config(&["10.0.0.0/33".into()], None).unwrap_err();
        assert!(e.to_string().contains("'10.0.0.0/33'"), "{e}");
        assert!(Network::from_config(&["proxy.local".into()], None).is_err());
        for bad in [
            "cvat.example.com",
            "ftp://x.example",
            "https://",
            "https://u:p@x.example",
            "https://x.example/?a=1",
            "https://x.example/#f",
            "not a url",
        ] {
            let e = Network::from_config(&[], Some(bad)).unwrap_err();
            assert!(e.to_string().contains("--public-url"), "{bad}: {e}");
        }
        let n = Network::from_config(&[], Some("https://cvat.example.com/prefix/")).unwrap();
        assert_eq!(
            n.base_url(
                ip("1.2.3.4"),
                &headers(&[("host", "evil")]),
                &Uri::default()
            ),
            "https://cvat.example.com/prefix"
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let n = net(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        // From an untrusted peer: the peer, whatever it claims.
        assert_eq!(n.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        // From a trusted proxy: the client it reports.
        assert_eq!(n.client_ip(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // Without the header: the proxy itself.
        assert_eq!(
            n.client_ip(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // A chain: the right-most untrusted address, not a spoofed left-most one.
        let chain = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.7"),
        ]);
        assert_eq!(n.client_ip(ip("10.1.2.3"), &chain), ip("203.0.113.9"));
        // Every hop trusted: the left-most.
        let inner = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(n.client_ip(ip("10.1.2.3"), &inner), ip("10.0.0.5"));
        // Garbage stops the walk at the last address read.
        let junk = headers(&[("x-forwarded-for", "203.0.113.9, junk, 10.0.0.6")]);
        assert_eq!(n.client_ip(ip("10.1.2.3"), &junk), ip("10.0.0.6"));
        // Ports and brackets; IPv4-mapped peers.
        let ported = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(
            n.client_ip(ip("::ffff:10.1.2.3"), &ported),
            ip("2001:db8::1")
        );
        // RFC 7239 `Forwarded` when there is no X-Forwarded-For.
        let fwd = headers(&[(
            "forwarded",
            r#"for=198.51.100.4;proto=https, for="[2001:db8:cafe::17]:4711""#,
        )]);
        assert_eq!(n.client_ip(ip("10.1.2.3"), &fwd), ip("2001:db8:cafe::17"));
        // No proxies configured: nothing is believed.
        assert_eq!(net(&[]).client_ip(ip("10.1.2.3"), &h), ip("10.1.2.3"));
    }

    #[test]
    fn base_url_from_host_or_a_trusted_proxy() {
        let n = net(&["127.0.0.1"]);
        let none = Uri::default();
        let plain = headers(&[("host", "media.example:8080")]);
        assert_eq!(
            n.base_url(ip("192.0.2.1"), &plain, &none),
            "http://media.example:8080"
        );
        let proxied = headers(&[
            ("host", "backend:8080"),
            ("x-forwarded-proto", "HTTPS"),
            ("x-forwarded-host", "cvat.example.com"),
        ]);
        assert_eq!(
            n.base_url(ip("127.0.0.1"), &proxied, &none),
            "https://cvat.example.com"
        );
        // The same headers from anyone else are ignored.
        assert_eq!(
            n.base_url(ip("192.0.2.1"), &proxied, &none),
            "http://backend:8080"
        );
        // RFC 7239, the nearest proxy's element.
        let fwd = headers(&[
            ("host", "backend"),
            (
                "forwarded",
                r#"proto=http;host=a.example, proto=https;host="b.example""#,
            ),
        ]);
        assert_eq!(
            n.base_url(ip("127.0.0.1"), &fwd, &none),
            "https://b.example"
        );
        // Unusable values fall back: a bad scheme, a host with a path or credentials.
        let bad = headers(&[
            ("host", "backend"),
            ("x-forwarded-proto", "javascript"),
            ("x-forwarded-host", "evil.example/x"),
        ]);
        assert_eq!(n.base_url(ip("127.0.0.1"), &bad, &none), "http://backend");
        let bad_host = headers(&[("host", "a@evil.example")]);
        assert_eq!(
            n.base_url(ip("192.0.2.1"), &bad_host, &none),
            "http://localhost"
        );
    }
}
