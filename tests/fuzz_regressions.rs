//! Fuzz regressions on stable: every input kept in `fuzz/regressions/TARGET/`
//! (crashes found by `fuzz/run.sh`, once fixed, and hand-made hostile cases)
//! runs through the same harness function as its libFuzzer target.

use crate::harness;
use crate::util::root;

#[test]
fn every_kept_fuzz_input_runs_clean() {
    let dir = root().join("fuzz/regressions");
    let mut ran = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions exists") {
        let target_dir = entry.unwrap().path();
        let target = target_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            harness::TARGETS.contains(&target.as_str()),
            "fuzz/regressions/{target} is not a fuzz target"
        );
        let mut inputs: Vec<_> = std::fs::read_dir(&target_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        for input in inputs {
            let bytes = std::fs::read(&input).unwrap();
            // A panic here names the input through the test's output.
            eprintln!("{target}: {}", input.display());
            assert!(harness::run(&target, &bytes));
            ran += 1;
        }
    }
    assert!(ran > 0, "no regression inputs found");
}
