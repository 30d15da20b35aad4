//! Property-based fuzzing of the loader: arbitrary bytes and mutated spec
//! files must never panic, and every failure must come back as diagnostics
//! with a position inside the file.

use proptest::prelude::*;

use keelson::yaml::{Limits, parse_documents};

use crate::project_root;

fn example_text() -> String {
    std::fs::read_to_string(project_root().join("environments/prod/environment.yaml")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_the_parser(s in "\\PC{0,300}") {
        let _ = parse_documents(&s, Limits::default());
    }

    #[test]
    fn yaml_ish_text_never_panics_and_errors_stay_in_the_file(
        s in prop::collection::vec(prop::sample::select(vec![
            "a", ":", " ", "\n", "- ", "[", "]", "{", "}", "&x ", "*x", "'", "\"", "#", "\t", "---\n", "? ", "|\n", "1", "~",
        ]), 0..80)
    ) {
        let text: String = s.concat();
        if let Err(e) = parse_documents(&text, Limits::default()) {
            let lines = text.lines().count().max(1) + 1;
            prop_assert!(e.span.start.line <= lines, "line {} beyond {} lines", e.span.start.line, lines);
        }
    }

    #[test]
    fn mutated_spec_files_give_diagnostics_not_panics(
        cut in 0usize..4000, insert in "[a-z:\\-\\[\\]{}&* \\n\\t\"']{0,8}"
    ) {
        let text = example_text();
        let cut = cut.min(text.len());
        let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap();
        let mutated = format!("{}{}{}", &text[..cut], insert, &text[cut..]);
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("environments/prod");
        std::fs::create_dir_all(&env).unwrap();
        std::fs::write(env.join("environment.yaml"), &mutated).unwrap();
        let report = keelson::check::check_repo(dir.path());
        for d in &report.diagnostics {
            prop_assert!(d.line <= mutated.lines().count() + 1);
        }
    }
}
