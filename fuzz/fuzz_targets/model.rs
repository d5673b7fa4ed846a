#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = xpusim::parse_models("fuzz.toml", text);
    if let Ok(table) = text.parse::<toml::Table>() {
        let _ = xpusim::model_from_table("fuzz.toml", "model", table);
    }
});
