use xpusim::*;
#[test]
fn scratch() {
    let cat = hardware::Catalog::builtin().unwrap();
    let files: Vec<_> = std::fs::read_dir("tests/data/validation").unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().map_or(false, |e| e == "toml")).collect();
    let runs = match validation::load_runs(&files, &cat) { Ok(r) => r, Err(e) => panic!("{e}") };
    let prior = calibration::Calibration::prior();
    let cal = calibration::fit(&runs, "scratch").unwrap();
    for (k, g) in &cal.groups { println!("{k}: {:?} rms {:.3} max {:.3} n {} bound {:?}", g.efficiency, g.rms_relative_error, g.max_relative_error, g.runs, g.at_bound); }
    let c0 = validation::compare(&runs, &prior);
    let c1 = validation::compare(&runs, &cal);
    for (a, b) in c0.iter().zip(&c1) { println!("{:45} {:8} meas {:9.3} prior {:+.3} fit {:+.3} [{}]", a.id, a.chips, a.measured_s, a.error, b.error, b.group); }
    let mae: f64 = c1.iter().map(|c| c.error.abs()).sum::<f64>() / c1.len() as f64;
    println!("MAE {mae:.4}");
}
