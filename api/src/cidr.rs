//! IPv4 CIDR arithmetic: parsing with a clear message, containment, overlap,
//! and carving a network into per-zone subnets the way kops does.

use ipnet::Ipv4Net;

/// Parses `10.0.0.0/16`. The address must be the network's first address, so
/// that `10.0.1.0/16` (a typo that silently means `10.0.0.0/16`) is refused.
pub fn parse(text: &str) -> Result<Ipv4Net, String> {
    let network: Ipv4Net = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IPv4 CIDR like 10.0.0.0/16"))?;
    if network.network() != network.addr() {
        return Err(format!(
            "{text} has host bits set; the network is {}",
            network.trunc()
        ));
    }
    Ok(network)
}

/// Whether `inner` lies entirely within `outer`.
pub fn contains(outer: &Ipv4Net, inner: &Ipv4Net) -> bool {
    outer.contains(inner)
}

/// Whether the two ranges share any address.
pub fn overlaps(first: &Ipv4Net, second: &Ipv4Net) -> bool {
    first.contains(&second.network()) || second.contains(&first.network())
}

/// Addresses for the subnets `create cluster` fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarvedSubnets {
    /// One large subnet per zone, for nodes.
    pub zone_subnets: Vec<Ipv4Net>,
    /// One small subnet per zone, for NAT gateways and load balancers
    /// (used by private topology).
    pub utility_subnets: Vec<Ipv4Net>,
}

/// Carves `network` into one large block per zone and one small utility
/// block per zone, all disjoint: the network is split into at least eight
/// equal blocks (a `/19` each of a `/16`); zone `i` gets block `i` and the
/// last block is split again for the utility subnets.
pub fn carve(network: &Ipv4Net, zones: usize) -> Result<CarvedSubnets, String> {
    if zones == 0 {
        return Err("at least one zone is needed".to_string());
    }
    let blocks = (zones + 1).next_power_of_two().max(8);
    let extra_bits = blocks.trailing_zeros() as u8;
    let zone_prefix = network.prefix_len() + extra_bits;
    let utility_prefix = zone_prefix + extra_bits;
    if utility_prefix > 28 {
        return Err(format!(
            "network {network} is too small for {zones} zones; use a /16 to /20"
        ));
    }
    let zone_blocks: Vec<Ipv4Net> = network
        .subnets(zone_prefix)
        .map_err(|error| error.to_string())?
        .collect();
    let last = *zone_blocks
        .last()
        .ok_or_else(|| format!("network {network} cannot be split"))?;
    let utility_blocks: Vec<Ipv4Net> = last
        .subnets(utility_prefix)
        .map_err(|error| error.to_string())?
        .take(zones)
        .collect();
    Ok(CarvedSubnets {
        zone_subnets: zone_blocks.into_iter().take(zones).collect(),
        utility_subnets: utility_blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn carves_a_slash_sixteen_like_kops() {
        let network = parse("10.0.0.0/16").expect("valid");
        let carved = carve(&network, 3).expect("carves");
        let zones: Vec<String> = carved
            .zone_subnets
            .iter()
            .map(ToString::to_string)
            .collect();
        let utility: Vec<String> = carved
            .utility_subnets
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(zones, ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]);
        assert_eq!(utility, ["10.0.224.0/22", "10.0.228.0/22", "10.0.232.0/22"]);
    }

    #[test]
    fn refuses_host_bits_and_garbage() {
        assert!(parse("10.0.1.0/16").unwrap_err().contains("host bits"));
        assert!(parse("10.0.0.0/33").is_err());
        assert!(parse("banana").is_err());
    }

    proptest! {
        #[test]
        fn carved_subnets_are_disjoint_and_inside(prefix in 8u8..=20, zones in 1usize..=12, base in any::<u32>()) {
            let network = Ipv4Net::new(std::net::Ipv4Addr::from(base), prefix).expect("prefix ok").trunc();
            if let Ok(carved) = carve(&network, zones) {
                let all: Vec<Ipv4Net> = carved.zone_subnets.iter().chain(&carved.utility_subnets).copied().collect();
                prop_assert_eq!(all.len(), zones * 2);
                for (index, subnet) in all.iter().enumerate() {
                    prop_assert!(contains(&network, subnet));
                    for other in &all[index + 1..] {
                        prop_assert!(!overlaps(subnet, other), "{} overlaps {}", subnet, other);
                    }
                }
            }
        }
    }
}
