#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static xpusim::Catalog {
    static CATALOG: OnceLock<xpusim::Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| xpusim::Catalog::builtin().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = xpusim::parse_runs("fuzz.toml", text, catalog());
});
