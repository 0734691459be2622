//! IPv4 CIDR arithmetic: parsing with a clear message, containment, overlap,
//! and carving a network into per-zone subnets the way kops does.

use ipnet::{Ipv4Net, PrefixLenError};

/// Why a text is not a usable IPv4 network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCidr {
    /// Not of the form `a.b.c.d/n`.
    #[error("{text:?} is not an IPv4 CIDR like 10.0.0.0/16")]
    Syntax {
        /// What was given.
        text: String,
    },
    /// The address is not the network's first address.
    #[error("{text} has host bits set; the network is {network}")]
    HostBits {
        /// What was given.
        text: String,
        /// The network the text would silently mean.
        network: Ipv4Net,
    },
}

/// Why a network cannot be carved into per-zone subnets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarveError {
    /// No zones were asked for.
    #[error("at least one zone is needed")]
    NoZones,
    /// The per-zone blocks would be smaller than a `/28`.
    #[error("network {network} is too small for {zones} zones; use a /16 to /20")]
    TooSmall {
        /// The network to carve.
        network: Ipv4Net,
        /// How many zones were asked for.
        zones: usize,
    },
    /// A prefix length beyond 32 (cannot happen after the size check).
    #[error(transparent)]
    PrefixLength(#[from] PrefixLenError),
    /// The network yielded no blocks at all.
    #[error("network {network} cannot be split")]
    CannotSplit {
        /// The network to carve.
        network: Ipv4Net,
    },
}

/// Parses `10.0.0.0/16`. The address must be the network's first address, so
/// that `10.0.1.0/16` (a typo that silently means `10.0.0.0/16`) is refused.
pub fn parse(text: &str) -> Result<Ipv4Net, InvalidCidr> {
    let network: Ipv4Net = text.trim().parse().map_err(|_| InvalidCidr::Syntax {
        text: text.to_string(),
    })?;
    if network.network() != network.addr() {
        return Err(InvalidCidr::HostBits {
            text: text.to_string(),
            network: network.trunc(),
        });
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
pub fn carve(network: &Ipv4Net, zones: usize) -> Result<CarvedSubnets, CarveError> {
    if zones == 0 {
        return Err(CarveError::NoZones);
    }
    let blocks = (zones + 1).next_power_of_two().max(8);
    let extra_bits = blocks.trailing_zeros() as u8;
    let zone_prefix = network.prefix_len() + extra_bits;
    let utility_prefix = zone_prefix + extra_bits;
    if utility_prefix > 28 {
        return Err(CarveError::TooSmall {
            network: *network,
            zones,
        });
    }
    let zone_blocks: Vec<Ipv4Net> = network.subnets(zone_prefix)?.collect();
    let last = *zone_blocks
        .last()
        .ok_or(CarveError::CannotSplit { network: *network })?;
    let utility_blocks: Vec<Ipv4Net> = last.subnets(utility_prefix)?.take(zones).collect();
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
        assert_eq!(
            parse("10.0.1.0/16").unwrap_err().to_string(),
            "10.0.1.0/16 has host bits set; the network is 10.0.0.0/16"
        );
        assert_eq!(
            parse("banana").unwrap_err().to_string(),
            "\"banana\" is not an IPv4 CIDR like 10.0.0.0/16"
        );
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
