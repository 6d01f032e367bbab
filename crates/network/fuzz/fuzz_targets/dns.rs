//! Any bytes a container sends to 127.0.0.11: reading them never panics,
//! and every query that reads gets an answer that reads back, within the
//! size asked for.
#![no_main]

use std::net::Ipv4Addr;

use kiln_network::dns::{self, Rcode, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(reply) = dns::error_response(data, Rcode::FormErr) {
        let parsed = dns::parse_response(&reply).expect("an error response parses");
        assert_eq!(parsed.rcode, Rcode::FormErr as u8);
    }
    let _ = dns::parse_response(data);
    let Ok(query) = dns::parse_query(data) else { return };
    let _ = dns::reverse_ipv4(&query.name);

    let again = dns::parse_query(&dns::build_query(query.id, &query.name, query.qtype))
        .expect("a parsed name builds a query that parses");
    assert_eq!(again.name, query.name);

    let records: Vec<Record> = (0..40u8)
        .map(|i| Record::A(Ipv4Addr::new(172, 18, 0, i)))
        .chain([Record::Ptr(query.name.clone()), Record::Ptr("web.mynet".to_owned())])
        .collect();
    let limit = usize::from(query.edns_udp_size.unwrap_or(512));
    for (rcode, max_size) in
        [(Rcode::NoError, limit), (Rcode::NoError, 0), (Rcode::NxDomain, 65535)]
    {
        let out = dns::response(&query, rcode, &records, 600, max_size);
        let parsed = dns::parse_response(&out).expect("our response parses");
        assert_eq!(parsed.id, query.id);
        assert_eq!(parsed.rcode, rcode as u8);
        assert!(out.len() <= max_size.max(12 + query.name.len() + 2 + 4));
        assert!(parsed.answers.iter().all(|(owner, _)| *owner == query.name));
        assert_eq!(parsed.truncated, parsed.answers.len() < records.len());
        assert!(out.len() <= 65535);
    }
});
