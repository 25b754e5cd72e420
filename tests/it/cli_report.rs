//! `veriff-archiver report`: the evidence pack of one session, built by the real binary
//! against the local S3 server, and looked at in a real headless browser (Debian's
//! Chromium): the DOM after load, what a person sees in it (`innerText`), whether every
//! image decodes under the page's own Content-Security-Policy, and a screenshot.
//!
//! The browser tests FAIL, never skip, when Chromium is missing: it is found through the
//! `CHROMIUM` environment variable or at `/usr/bin/chromium` (`apt-get install -y
//! chromium`). Set `CLI_REPORT_KEEP=DIR` to keep the clean report, its JSON and its
//! screenshot in DIR, to look at them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{BUCKET, Harness, PREFIX, cli_env, decision};
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{MediaContent, decision_webhook, demo_scenario};
use base64::Engine;
use serde_json::Value;

const SESSION: &str = DEMO_SESSION_ID;
const ATTEMPT: &str = DEMO_ATTEMPT_ID;
const SECOND_DECISION_TIME: &str = "2025-03-05T10:00:00Z";
/// The demo video's length: big enough to be a real file, small enough to be quick.
const VIDEO_LEN: u64 = 1_500_000;

// ---------------------------------------------------------------------------------------
// The archive under test.

/// A session archived twice for the same attempt (approved, then declined a day later),
/// with 5 images, a video, an NFC file, and each decision's webhook body kept. The demo's
/// images are JPEG-looking random bytes that no browser can decode, so each is replaced
/// by a real PNG (listed with its real size and type) to prove the page's images render.
async fn archived_session() -> Harness {
    let h = Harness::with(&[
        ("ARCHIVE_VIDEOS", "true"),
        ("ARCHIVE_DECISION_PAYLOAD", "true"),
    ])
    .await;
    let scenario = demo_scenario(&h.fake, VIDEO_LEN);
    let mut session_doc: Value = serde_json::from_str(&scenario.session_media_json).unwrap();
    for (i, item) in session_doc["images"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let bytes = png(200, 130, i);
        item["size"] = Value::from(bytes.len());
        item["mimetype"] = Value::from("image/png");
        h.fake.set_media(
            item["id"].as_str().unwrap(),
            MediaContent::bytes(bytes, "image/png"),
        );
    }
    let mut attempt_doc = session_doc.clone();
    attempt_doc.as_object_mut().unwrap().remove("nfcDocuments");
    h.fake.set_session_media(SESSION, session_doc.to_string());
    h.fake.set_attempt_media(ATTEMPT, attempt_doc.to_string());

    let first = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = h
        .deliver_body(&decision_webhook(
            SESSION,
            ATTEMPT,
            "declined",
            SECOND_DECISION_TIME,
        ))
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(h.manifests(SESSION, ATTEMPT).await.len(), 2);
    h
}

/// Runs `veriff-archiver report` in `cwd` with the function's environment variables
/// pointing at the harness.
fn run_report(h: &Harness, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veriff-archiver"))
        .arg("report")
        .args(args)
        .current_dir(cwd)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("MANIFEST_SIGNING_KEY_ID")
        .envs(cli_env(h))
        .output()
        .expect("run veriff-archiver")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The one `evidence-<session>-<time>` folder the report wrote into `cwd`.
fn default_pack(cwd: &Path) -> PathBuf {
    let packs: Vec<PathBuf> = std::fs::read_dir(cwd)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(packs.len(), 1, "one pack folder: {packs:?}");
    let name = packs[0].file_name().unwrap().to_string_lossy().into_owned();
    let time = name
        .strip_prefix(&format!("evidence-{SESSION}-"))
        .unwrap_or_else(|| panic!("pack folder name {name}"));
    assert!(
        time.len() == 16 && time.ends_with('Z') && time.as_bytes()[8] == b'T',
        "UTC time in the folder name: {name}"
    );
    packs[0].clone()
}

// ---------------------------------------------------------------------------------------
// The browser.

/// Debian's Chromium: `CHROMIUM`, or `/usr/bin/chromium`. Panics (the test fails) when
/// there is none: the browser tests are part of the suite, not optional.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "headless Chromium is required for the report tests and was not found at {}: \
         install it with `apt-get install -y chromium`, or set CHROMIUM to its path",
        path.display()
    );
    path
}

/// Runs headless Chromium (flags from TOOLING.md: no sandbox as root, no background
/// network, a throwaway profile) with `args` on `page`, within a minute.
fn browse(args: &[&str], page: &Path) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Read stdout on a thread so a large DOM cannot fill the pipe while we wait.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// The DOM after load, as Chromium serialises it.
fn dump_dom(page: &Path) -> String {
    let output = browse(&["--dump-dom", "--virtual-time-budget=5000"], page);
    assert!(
        output.status.success() && !output.stdout.is_empty(),
        "chromium --dump-dom {}: {}",
        page.display(),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// A screenshot of `page` in a window of `width` x `height`.
fn screenshot(page: &Path, png: &Path, width: u32, height: u32) -> Vec<u8> {
    let output = browse(
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={width},{height}"),
            "--virtual-time-budget=5000",
        ],
        page,
    );
    assert!(
        output.status.success() && png.is_file(),
        "chromium --screenshot {}: {}",
        page.display(),
        text(&output.stderr)
    );
    std::fs::read(png).unwrap()
}

/// What a person sees in the page, as the browser measured it after load.
///
/// The page has no script and its Content-Security-Policy forbids one, so the test cannot
/// ask the page itself. It loads a copy with one test-only script inserted first in
/// `<head>`, *before* the page's CSP `<meta>`: a CSP delivered by `<meta>` governs only
/// what follows it, so the page's own policy still applies to everything the page loads
/// (its style and its `data:` images), and any violation of it is recorded. On `load`
/// (after every image decoded or failed) the script writes, base64-encoded JSON in a
/// `<pre>` that `--dump-dom` then prints: how many `<img>` there are and how many decoded
/// (`naturalWidth > 0`) and take up space on screen, the CSP violations, every resource
/// the page tried to fetch, the attribute URLs, the visible text (`innerText`, which
/// follows the CSS), and each decision heading and file card's visible text.
fn what_a_person_sees(report: &Path, dir: &Path) -> Value {
    const PROBE: &str = r#"<script>
(() => {
  const violations = [];
  document.addEventListener('securitypolicyviolation',
    (e) => violations.push(e.violatedDirective + ' ' + e.blockedURI));
  window.addEventListener('load', () => {
    const images = [...document.images];
    const seen = {
      images: images.length,
      decoded: images.filter((i) => i.complete && i.naturalWidth > 0).length,
      onScreen: images.filter((i) => {
        const r = i.getBoundingClientRect();
        return r.width >= 50 && r.height >= 30;
      }).length,
      imageSources: images.map((i) => i.getAttribute('src').slice(0, 22)),
      violations,
      resources: performance.getEntriesByType('resource').map((e) => e.name),
      urls: [...document.querySelectorAll('[src],[href]')]
        .map((e) => (e.getAttribute('src') || e.getAttribute('href')).slice(0, 30)),
      scripts: document.scripts.length,
      title: document.title,
      text: document.body.innerText,
      verdict: document.getElementById('verdict').innerText,
      decisions: [...document.querySelectorAll('article.decision')].map((d) => ({
        heading: d.querySelector('h3').innerText,
        text: d.innerText,
      })),
      files: [...document.querySelectorAll('figure')].map((f) => ({
        text: f.innerText,
        image: f.querySelector('img') ? f.querySelector('img').naturalWidth : null,
      })),
    };
    const out = document.createElement('pre');
    out.id = 'test-probe';
    out.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(seen))));
    document.body.appendChild(out);
  });
})();
</script>
"#;
    let html = std::fs::read_to_string(report).unwrap();
    let probed = html.replacen("<head>\n", &format!("<head>\n{PROBE}"), 1);
    assert_ne!(probed, html, "the probe goes first in <head>");
    let page = dir.join("probed-report.html");
    std::fs::write(&page, probed).unwrap();
    let dom = dump_dom(&page);
    let start = dom
        .find("<pre id=\"test-probe\">")
        .unwrap_or_else(|| panic!("the probe ran on load: {}", &dom[..dom.len().min(2000)]))
        + "<pre id=\"test-probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = base64::engine::general_purpose::STANDARD
        .decode(dom[start..end].trim())
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// The value shown after a label in a card's visible text (`<dt>` and `<dd>` are lines).
fn shown_after<'a>(card: &'a str, label: &str) -> Option<&'a str> {
    let mut lines = card.lines().map(str::trim).filter(|l| !l.is_empty());
    lines.find(|l| *l == label)?;
    lines.next()
}

/// The file card (visible text) that shows `key`; the first, when several do.
fn card_of<'a>(seen: &'a Value, key: &str) -> &'a str {
    seen["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .find(|t| shown_after(t, "S3 key") == Some(key))
        .unwrap_or_else(|| panic!("a card shows {key}"))
}

// ---------------------------------------------------------------------------------------
// A real image for the browser: an uncompressed PNG (stored deflate blocks).

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A `width` x `height` RGB PNG that looks like a card: a shaded colour, a light band, and
/// a dark disc whose place tells each `index` apart (no two images have the same bytes).
fn png(width: u32, height: u32, index: usize) -> Vec<u8> {
    const COLOURS: [[u8; 3]; 5] = [
        [0x3a, 0x6e, 0xd8],
        [0xd8, 0x5a, 0x3a],
        [0x2e, 0xa0, 0x5a],
        [0x9b, 0x4d, 0xca],
        [0xd8, 0xa8, 0x2e],
    ];
    let base = COLOURS[index % COLOURS.len()];
    let mut raw = Vec::with_capacity(((width * 3 + 1) * height) as usize);
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            let centre = width as i64 / 4 + 12 * index as i64;
            let (dx, dy) = (x as i64 - centre, y as i64 - height as i64 / 2);
            let pixel = if dx * dx + dy * dy < (height as i64 / 4).pow(2) {
                [0x22, 0x26, 0x30]
            } else if (height / 5..height / 5 + 8).contains(&y) {
                [0xf4, 0xf4, 0xf4]
            } else {
                let shade = 0.65 + 0.35 * f64::from(x + y) / f64::from(width + height);
                base.map(|c| (f64::from(c) * shade) as u8)
            };
            raw.extend_from_slice(&pixel);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Width and height from a PNG's IHDR, after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "a PNG"
    );
    assert_eq!(&png[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

// ---------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread")]
async fn report_of_a_re_decided_session_renders_every_decision_file_and_image() {
    let h = archived_session().await;
    let cwd = tempfile::tempdir().unwrap();
    let output = run_report(&h, cwd.path(), &["--session", SESSION]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        text(&output.stderr)
    );

    println!("{stdout}"); // shown with --nocapture
    // The pack: a new folder in the current directory, owner-only, two files.
    let pack = default_pack(cwd.path());
    assert!(stdout.contains(&pack.display().to_string()), "{stdout}");
    assert!(stdout.contains("personal data"), "{stdout}");
    assert!(stdout.contains("owner only"), "{stdout}");
    assert!(
        stdout.contains("all 9 files verified (2 decisions, 1 attempt)"),
        "{stdout}"
    );
    assert_eq!(mode(&pack), 0o700, "the folder is the owner's only");
    let mut names: Vec<String> = std::fs::read_dir(&pack)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["report.html", "verify.json"]);
    for name in &names {
        assert_eq!(mode(&pack.join(name)), 0o600, "{name} is the owner's only");
    }

    // verify.json: the audit of this session, as `verify --json` prints it.
    let verify: Value =
        serde_json::from_slice(&std::fs::read(pack.join("verify.json")).unwrap()).unwrap();
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["exitCode"], 0);
    let summary = &verify["summary"];
    assert_eq!(summary["sessions"], 1);
    assert_eq!(summary["attempts"], 1);
    assert_eq!(summary["manifests"], 2);
    // 5 images, the video, the NFC file, and the two webhook bodies.
    assert_eq!(summary["files"], 9);
    assert_eq!(summary["ok"], 9);
    for class in [
        "missing",
        "altered",
        "unreadable",
        "unsigned",
        "badSignature",
        "orphans",
        "gaps",
    ] {
        assert_eq!(summary[class], 0, "{class}: {verify:#}");
        assert_eq!(verify["problems"][class].as_array().unwrap().len(), 0);
    }
    assert_eq!(verify["bucket"], BUCKET);
    assert_eq!(verify["prefix"], PREFIX);
    let manifests = verify["sessions"][0]["attempts"][0]["manifests"]
        .as_array()
        .unwrap();
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[0]["decision"]["status"], "approved");
    assert_eq!(manifests[1]["decision"]["status"], "declined");
    let files = manifests[0]["files"].as_array().unwrap();
    assert_eq!(files.len(), 7);
    let mut hashes: Vec<&str> = files
        .iter()
        .map(|f| f["sha256"].as_str().unwrap())
        .collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 7, "7 different files");

    // Nothing personal beyond the images: the kept webhook bodies are not inlined.
    let report = pack.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    for personal in [
        "MORGAN",
        "SARAH",
        "MORGA753116SM9IJ",
        "186.153.67.122",
        "1967-03-30",
    ] {
        assert!(!html.contains(personal), "{personal} is in the page");
    }

    // The page as Chromium parsed it: no script, the CSP, 5 embedded images.
    let dom = dump_dom(&report);
    assert!(!dom.contains("<script"), "the page has no script");
    assert!(dom.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src \
         data:; style-src 'unsafe-inline'\">"
    ));
    assert_eq!(dom.matches("<img ").count(), 5, "5 images, each shown once");
    assert_eq!(dom.matches("<img src=\"data:image/png;base64,").count(), 5);

    // What a person sees.
    let seen = what_a_person_sees(&report, cwd.path());
    assert_eq!(seen["images"], 5, "{seen:#}");
    assert_eq!(seen["decoded"], 5, "every image decodes: {seen:#}");
    assert_eq!(seen["onScreen"], 5, "every image takes up room: {seen:#}");
    assert_eq!(
        seen["violations"],
        serde_json::json!([]),
        "no CSP violation"
    );
    assert_eq!(
        seen["resources"],
        serde_json::json!([]),
        "no request at all"
    );
    for url in seen["urls"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with("data:image/png;base64,") || url.starts_with('#'),
            "only embedded images and in-page links: {url}"
        );
    }
    assert_eq!(seen["scripts"], 1, "only the test's probe");
    assert_eq!(seen["title"], format!("KYC evidence: session {SESSION}"));
    let visible = seen["text"].as_str().unwrap();
    for shown in [SESSION, BUCKET, PREFIX, "Personal data", "Generated at"] {
        assert!(visible.contains(shown), "{shown} is shown");
    }
    let verdict = seen["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("All 9 files verified"), "{verdict}");

    // Both decisions, in time order, with their non-personal fields.
    let decisions = seen["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    let heading = |i: usize| decisions[i]["heading"].as_str().unwrap();
    assert_eq!(
        heading(0),
        "Decision 1 of 2: approved at 2025-03-04T10:21:07.412Z"
    );
    assert_eq!(
        heading(1),
        format!("Decision 2 of 2: declined at {SECOND_DECISION_TIME}")
    );
    let first = decisions[0]["text"].as_str().unwrap();
    let second = decisions[1]["text"].as_str().unwrap();
    assert_eq!(
        shown_after(first, "Decided by"),
        Some("the decision webhook")
    );
    assert_eq!(shown_after(first, "Decision score"), None);
    assert_eq!(shown_after(first, "Status"), Some("approved"));
    assert_eq!(shown_after(first, "Code"), Some("9001"));
    assert_eq!(shown_after(first, "Reason"), Some("none"));
    assert_eq!(shown_after(second, "Status"), Some("declined"));
    assert_eq!(
        shown_after(second, "Reason"),
        Some("Suspected document tampering.")
    );
    assert_eq!(shown_after(second, "Reason code"), Some("102"));
    assert_eq!(
        shown_after(second, "Decision time"),
        Some(SECOND_DECISION_TIME)
    );
    for d in [first, second] {
        assert_eq!(shown_after(d, "Schema version"), Some("3"));
        assert_eq!(
            shown_after(d, "Signature"),
            Some("not signed"),
            "signatures are off in this archive"
        );
        assert!(shown_after(d, "Archived at").is_some_and(|t| t.starts_with("20")));
        // 4 lower-ranked images per decision, each with its reason.
        assert_eq!(d.matches("lower_ranked: a better-ranked file").count(), 4);
        assert!(!d.contains("MORGAN"));
    }

    // Every file of every decision: its hash, size, key, version and result; the image
    // inline or a line saying what it is.
    for (m, manifest) in manifests.iter().enumerate() {
        let shown_in = decisions[m]["text"].as_str().unwrap();
        let records = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .chain(Some(&manifest["decisionPayload"]));
        for record in records {
            let key = record["key"].as_str().unwrap();
            let sha256 = record["sha256"].as_str().unwrap();
            assert!(shown_in.contains(key), "decision {m} shows {key}");
            assert!(shown_in.contains(sha256), "decision {m} shows {sha256}");
        }
    }
    for record in files {
        let key = record["key"].as_str().unwrap();
        let card = card_of(&seen, key);
        assert_eq!(shown_after(card, "SHA-256"), record["sha256"].as_str());
        assert_eq!(shown_after(card, "Result"), Some("ok"), "{card}");
        assert_eq!(shown_after(card, "Version"), Some("none recorded"));
        let size = record["size"].as_u64().unwrap();
        assert!(
            shown_after(card, "Size").is_some_and(|s| s.starts_with(&format!(
                "{} bytes",
                size.to_string()
                    .as_bytes()
                    .rchunks(3)
                    .rev()
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            ))),
            "{card}"
        );
    }
    let cards = seen["files"].as_array().unwrap();
    assert_eq!(cards.len(), 16, "8 files per decision (7 media, 1 body)");
    let with_image = cards.iter().filter(|c| c["image"].as_u64() == Some(200));
    assert_eq!(with_image.count(), 5, "5 cards show a decoded 200 px image");
    let reused = cards.iter().filter(|c| {
        c["text"]
            .as_str()
            .unwrap()
            .contains("The same stored image as shown above")
    });
    assert_eq!(
        reused.count(),
        5,
        "the second decision points to the same images"
    );
    let video = files.iter().find(|f| f["kind"] == "video").unwrap();
    assert!(card_of(&seen, video["key"].as_str().unwrap()).contains(
        "Video (video/mp4), 1,500,000 bytes (1.4 MiB): a recording of the verification session"
    ));
    let nfc = files.iter().find(|f| f["kind"] == "nfc").unwrap();
    assert!(card_of(&seen, nfc["key"].as_str().unwrap()).contains(
        "NFC data (application/octet-stream), 29,584 bytes (28.9 KiB): data read from the \
         identity document's chip"
    ));
    let body = manifests[0]["decisionPayload"]["key"].as_str().unwrap();
    let body_card = card_of(&seen, body);
    assert!(
        body_card.contains("not shown (personal data)"),
        "{body_card}"
    );
    assert_eq!(shown_after(body_card, "Result"), Some("ok"));

    // A screenshot: a real render, far from a blank page of the same size.
    let shots = tempfile::tempdir().unwrap();
    let blank_page = shots.path().join("blank.html");
    std::fs::write(&blank_page, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let blank = screenshot(&blank_page, &shots.path().join("blank.png"), 1280, 3000);
    let shot = screenshot(&report, &shots.path().join("report.png"), 1280, 3000);
    assert_eq!(png_size(&shot), (1280, 3000));
    assert_eq!(png_size(&blank), (1280, 3000));
    assert!(
        shot.len() > 100_000 && shot.len() > 20 * blank.len(),
        "the report renders content: {} bytes against {} for a blank page",
        shot.len(),
        blank.len()
    );
    if let Some(keep) = std::env::var_os("CLI_REPORT_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(keep.join("report.png"), &shot).unwrap();
        std::fs::copy(&report, keep.join("report.html")).unwrap();
        std::fs::copy(pack.join("verify.json"), keep.join("verify.json")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn report_shows_a_deleted_image_as_missing_and_exits_1() {
    let h = archived_session().await;
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    let face = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["context"] == "face")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    h.client
        .delete_object()
        .bucket(BUCKET)
        .key(&face)
        .send()
        .await
        .unwrap();

    // An existing empty folder is used, and made the owner's only.
    let cwd = tempfile::tempdir().unwrap();
    let out = cwd.path().join("pack");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = run_report(
        &h,
        cwd.path(),
        &["--session", SESSION, "--out", out.to_str().unwrap()],
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("1 problem(s) found (1 missing)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&out.display().to_string()),
        "written all the same"
    );
    assert_eq!(mode(&out), 0o700);

    let verify: Value =
        serde_json::from_slice(&std::fs::read(out.join("verify.json")).unwrap()).unwrap();
    assert_eq!(
        (&verify["ok"], &verify["exitCode"]),
        (&false.into(), &1.into())
    );
    assert_eq!(verify["summary"]["missing"], 1);
    assert_eq!(verify["summary"]["ok"], 8);
    assert_eq!(verify["problems"]["missing"][0]["key"], face);

    let seen = what_a_person_sees(&out.join("report.html"), cwd.path());
    assert_eq!(seen["images"], 4, "the 4 images still there: {seen:#}");
    assert_eq!(seen["decoded"], 4);
    assert!(
        seen["verdict"]
            .as_str()
            .unwrap()
            .starts_with("1 problem(s) found: 1 missing")
    );
    let card = card_of(&seen, &face);
    assert_eq!(
        shown_after(card, "Result"),
        Some("missing: no such object"),
        "{card}"
    );
    assert!(
        card.contains("not shown, the object is missing from the archive"),
        "{card}"
    );
    let problems = seen["text"].as_str().unwrap();
    assert!(problems.contains("Missing files (1)"));
    // Every other file is still shown as verified.
    let ok_cards = seen["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| shown_after(c["text"].as_str().unwrap(), "Result") == Some("ok"))
        .count();
    assert_eq!(ok_cards, 14, "16 cards, the face image's two are missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn report_shows_an_image_altered_behind_s3s_back_as_altered_without_deep() {
    let h = archived_session().await;
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    let front = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["context"] == "document-front")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    // Other bytes of the same size, written on the server's disk: size, ETag and S3
    // checksum (kept beside the file) still match the record, so HeadObject cannot tell.
    // The report downloads every image it shows and hashes it: this one is not shown.
    let on_disk = h.root.join(BUCKET).join(&front);
    let mut bytes = std::fs::read(&on_disk).unwrap();
    let other = png(200, 130, 3);
    assert_eq!(other.len(), bytes.len());
    bytes.copy_from_slice(&other);
    std::fs::write(&on_disk, &bytes).unwrap();

    let cwd = tempfile::tempdir().unwrap();
    let out = cwd.path().join("pack");
    let output = run_report(
        &h,
        cwd.path(),
        &["--session", SESSION, "--out", out.to_str().unwrap()],
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("1 problem(s) found (1 altered)"),
        "{stdout}"
    );

    let verify: Value =
        serde_json::from_slice(&std::fs::read(out.join("verify.json")).unwrap()).unwrap();
    assert_eq!(verify["summary"]["altered"], 1);
    assert_eq!(verify["summary"]["ok"], 8);
    let problem = &verify["problems"]["altered"][0];
    assert_eq!(problem["key"], front);
    assert!(
        problem["found"]
            .as_str()
            .unwrap()
            .ends_with("(downloaded to prove it)")
    );

    let seen = what_a_person_sees(&out.join("report.html"), cwd.path());
    assert_eq!(
        seen["images"], 4,
        "the altered image is not shown: {seen:#}"
    );
    assert_eq!(seen["decoded"], 4);
    let card = card_of(&seen, &front);
    assert!(
        shown_after(card, "Result").is_some_and(|r| r.starts_with("altered: SHA-256 ")),
        "{card}"
    );
    assert!(
        card.contains("the stored object differs from its record"),
        "{card}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_refuses_an_unsafe_session_id_without_writing() {
    let h = Harness::start().await;
    let cwd = tempfile::tempdir().unwrap();
    for bad in ["../etc", "a/b", "", "sess ion", "-leading-dash"] {
        let output = run_report(&h, cwd.path(), &[&format!("--session={bad}")]);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        assert!(text(&output.stderr).contains("--session"), "{bad:?}");
    }
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_refuses_a_session_with_nothing_archived() {
    let h = Harness::start().await;
    let cwd = tempfile::tempdir().unwrap();
    let output = run_report(&h, cwd.path(), &["--session", SESSION]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "no objects under s3://{BUCKET}/{PREFIX}{SESSION}/"
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_refuses_a_non_empty_out_folder_and_an_unreachable_bucket() {
    let h = Harness::start().await;
    let cwd = tempfile::tempdir().unwrap();
    let busy = cwd.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let output = run_report(
        &h,
        cwd.path(),
        &["--session", SESSION, "--out", busy.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("not empty"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1, "untouched");

    // With the session archived, so that only the bucket can be at fault: a bucket that
    // does not exist, then a server that does not answer, are exit 2 and no pack; the right
    // bucket makes the pack.
    demo_scenario(&h.fake, 1000);
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let output = run_report(
        &h,
        cwd.path(),
        &["--session", SESSION, "--bucket", "no-such-bucket"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("NoSuchBucket"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 1, "no pack");
    let mut h = h;
    h.stop_s3().await;
    let output = run_report(&h, cwd.path(), &["--session", SESSION]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 1, "no pack");
    h.restart_s3().await;
    let output = run_report(&h, cwd.path(), &["--session", SESSION]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        2,
        "the pack"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_of_a_full_auto_result_for_a_session_deleted_at_veriff_says_so() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let response = reqwest::Client::new()
        .delete(format!("{}/v1/sessions/{SESSION}", h.fake.base_url()))
        .header("X-AUTH-CLIENT", crate::support::API_KEY)
        .header(
            "X-HMAC-SIGNATURE",
            archiver_devkit::hmac_sha256_hex(crate::support::SECRET.as_bytes(), SESSION.as_bytes()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = archiver_devkit::full_auto_webhook(
        SESSION,
        ATTEMPT,
        "expired",
        "2025-03-04T11:00:00.000Z",
        Some(0.42),
    );
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.body["mediaUnavailable"], true, "{}", reply.body);

    let cwd = tempfile::tempdir().unwrap();
    let out = run_report(&h, cwd.path(), &["--session", SESSION]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = default_pack(cwd.path()).join("report.html");
    let seen = what_a_person_sees(&page, cwd.path());
    let decisions = seen["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1);
    let card = decisions[0]["text"].as_str().unwrap();
    assert_eq!(
        shown_after(card, "Decided by"),
        Some("a Full Auto result (Essential plan)")
    );
    assert_eq!(shown_after(card, "Decision score"), Some("0.42"));
    assert_eq!(shown_after(card, "Status"), Some("expired"));
    assert!(
        card.contains("No file archived: Veriff answered 404 to GET /v1/sessions/"),
        "{card}"
    );
}
