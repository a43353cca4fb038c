//! Which network addresses a URL a user supplies (a webhook endpoint) may
//! make the server reach. Only globally routable unicast addresses are
//! public; everything else (loopback, private and shared ranges, link-local
//! with the cloud metadata service at 169.254.169.254, multicast, reserved
//! and documentation ranges, and IPv6 forms that embed such an IPv4
//! address) is the server's own network, which a tenant must not probe.
//!
//! Pure classification: resolving a name and checking every address it
//! resolves to, at creation and again when connecting, is the adapter's job.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not public, for the refusal's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonPublic {
    Loopback,
    /// RFC 1918, shared address space (RFC 6598) and IPv6 unique local.
    Private,
    /// Link-local, which holds cloud metadata services.
    LinkLocal,
    Unspecified,
    Multicast,
    /// Broadcast, reserved, benchmarking, documentation, IETF protocol
    /// assignments and other special-purpose ranges.
    Reserved,
}

impl NonPublic {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local or metadata address",
            Self::Unspecified => "an unspecified address",
            Self::Multicast => "a multicast address",
            Self::Reserved => "a reserved address",
        }
    }
}

/// `Ok` for a globally routable unicast address, else what it is.
pub fn classify(ip: IpAddr) -> Result<(), NonPublic> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Result<(), NonPublic> {
    let [a, b, c, _] = ip.octets();
    let refusal = match (a, b, c) {
        (0, _, _) if ip.is_unspecified() => NonPublic::Unspecified,
        // "This network" (0/8), never a destination.
        (0, _, _) => NonPublic::Reserved,
        (127, _, _) => NonPublic::Loopback,
        (10, _, _) => NonPublic::Private,
        (172, 16..=31, _) | (192, 168, _) => NonPublic::Private,
        // Shared address space (carrier-grade NAT).
        (100, 64..=127, _) => NonPublic::Private,
        (169, 254, _) => NonPublic::LinkLocal,
        // IETF protocol assignments, documentation (TEST-NET-1/2/3),
        // benchmarking, 6to4 relay anycast.
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => NonPublic::Reserved,
        (198, 18..=19, _) | (192, 88, 99) => NonPublic::Reserved,
        (224..=239, _, _) => NonPublic::Multicast,
        // Reserved for future use, and the limited broadcast address.
        (240..=255, _, _) => NonPublic::Reserved,
        _ => return Ok(()),
    };
    Err(refusal)
}

fn classify_v6(ip: Ipv6Addr) -> Result<(), NonPublic> {
    if ip.is_unspecified() {
        return Err(NonPublic::Unspecified);
    }
    if ip.is_loopback() {
        return Err(NonPublic::Loopback);
    }
    // Forms that carry an IPv4 address: mapped (::ffff:a.b.c.d),
    // compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
    // reach that address, so they are judged by it.
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    let refusal = match segments[0] {
        0xfc00..=0xfdff => NonPublic::Private,
        0xfe80..=0xfebf => NonPublic::LinkLocal,
        // Site-local (deprecated, still routed inside some networks).
        0xfec0..=0xfeff => NonPublic::Private,
        0xff00..=0xffff => NonPublic::Multicast,
        // Documentation, Teredo and ORCHID/benchmarking under 2001::/23.
        0x2001 if segments[1] == 0x0db8 => NonPublic::Reserved,
        0x2001 if segments[1] < 0x0200 => NonPublic::Reserved,
        // Only 2000::/3 is global unicast.
        first if !(0x2000..=0x3fff).contains(&first) => NonPublic::Reserved,
        _ => return Ok(()),
    };
    Err(refusal)
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms
/// that carry one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low()),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(raw: &str) -> Result<(), NonPublic> {
        classify(raw.parse().expect("an address"))
    }

    #[test]
    fn public_unicast_addresses_are_reachable() {
        for raw in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
        ] {
            assert_eq!(verdict(raw), Ok(()), "{raw}");
        }
    }

    #[test]
    fn the_servers_own_networks_are_refused_whatever_the_notation() {
        for (raw, why) in [
            ("127.0.0.1", NonPublic::Loopback),
            ("127.255.0.9", NonPublic::Loopback),
            ("::1", NonPublic::Loopback),
            ("10.0.0.5", NonPublic::Private),
            ("172.16.0.1", NonPublic::Private),
            ("172.31.255.255", NonPublic::Private),
            ("192.168.1.1", NonPublic::Private),
            ("100.64.0.1", NonPublic::Private),
            ("fd00:ec2::254", NonPublic::Private),
            ("fc00::1", NonPublic::Private),
            ("169.254.169.254", NonPublic::LinkLocal),
            ("fe80::1", NonPublic::LinkLocal),
            ("0.0.0.0", NonPublic::Unspecified),
            ("::", NonPublic::Unspecified),
            ("0.1.2.3", NonPublic::Reserved),
            ("224.0.0.1", NonPublic::Multicast),
            ("ff02::1", NonPublic::Multicast),
            ("255.255.255.255", NonPublic::Reserved),
            ("240.0.0.1", NonPublic::Reserved),
            ("192.0.2.1", NonPublic::Reserved),
            ("198.18.0.1", NonPublic::Reserved),
            ("2001:db8::1", NonPublic::Reserved),
            ("2001::1", NonPublic::Reserved),
            ("100::1", NonPublic::Reserved),
            // IPv4 inside IPv6: judged by the IPv4 address.
            ("::ffff:127.0.0.1", NonPublic::Loopback),
            ("::ffff:169.254.169.254", NonPublic::LinkLocal),
            ("::10.0.0.1", NonPublic::Private),
            ("64:ff9b::a9fe:a9fe", NonPublic::LinkLocal),
            ("2002:7f00:1::", NonPublic::Loopback),
            ("2002:c0a8:0101::1", NonPublic::Private),
        ] {
            assert_eq!(verdict(raw), Err(why), "{raw}");
        }
        // A public IPv4 address in those forms stays public.
        assert_eq!(verdict("::ffff:8.8.8.8"), Ok(()));
        assert_eq!(verdict("64:ff9b::808:808"), Ok(()));
        assert_eq!(verdict("2002:0808:0808::1"), Ok(()));
    }
}
