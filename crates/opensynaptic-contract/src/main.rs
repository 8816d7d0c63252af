//! Writes the TypeScript copy of the contract (`packages/internal/src/native-contract.ts`), or
//! with `--check` fails when the committed one differs. Run from anywhere in the repository:
//! `cargo run -q -p opensynaptic-contract [-- --check]`.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(opensynaptic_contract::TS_PATH);
    let fresh = opensynaptic_contract::typescript();
    if check {
        if std::fs::read_to_string(&path).ok().as_deref() == Some(fresh.as_str()) {
            println!(
                "{} is what the generator writes",
                opensynaptic_contract::TS_PATH
            );
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "{} is not what crates/opensynaptic-contract generates now; run `pnpm --filter @opensynaptic/binding generate` and commit it",
                opensynaptic_contract::TS_PATH
            );
            ExitCode::FAILURE
        }
    } else if let Err(e) = std::fs::write(&path, fresh) {
        eprintln!("cannot write {}: {e}", path.display());
        ExitCode::FAILURE
    } else {
        println!("{} regenerated", opensynaptic_contract::TS_PATH);
        ExitCode::SUCCESS
    }
}
