use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let mut protos = Vec::new();
    collect(&root.join("xiaoneng"), &mut protos)?;
    protos.sort();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Type names let an event carry its full protobuf name as its CloudEvents type.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("xiaoneng_descriptor.bin"))
        .compile_with_config(config, &protos, &[root])?;
    // A package with no messages yet (an events package before its first event) generates no
    // file; give it an empty module so `lib.rs` can include every package alike.
    for p in &protos {
        let text = std::fs::read_to_string(p)?;
        if let Some(pkg) = text.lines().find_map(|l| l.trim().strip_prefix("package ")) {
            let file = out.join(format!("{}.rs", pkg.trim_end_matches(';').trim()));
            if !file.exists() {
                std::fs::write(file, "")?;
            }
        }
    }
    Ok(())
}

fn collect(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
