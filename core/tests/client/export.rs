//! `Client::export`: Parquet and CSV files read back with the real readers, errors, and
//! cancellation that leaves no partial file. (Bounded memory, through the CLI against a
//! node: `server_cli.rs`.)

use std::fs;

use arrow_array::{Array, Float64Array, Int32Array, LargeStringArray, TimestampNanosecondArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use telemetron::channel::{ChannelRef, NewChannel};
use telemetron::client::export::{ExportConfig, ExportFormat, ExportProgress};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Client, Error};

const N: usize = 25_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// `t` (index), `p` (f64), `n` (i32) and `s` (string) on `t`, written in 5 frames of 5,000
/// rows; `q` on another index `t2`; virtual `v`.
async fn stand(client: &Client) {
    client
        .create_channels(
            vec![
                NewChannel::index("t"),
                NewChannel::data("p", DataType::F64, "t"),
                NewChannel::data("n", DataType::I32, "t"),
                NewChannel::data("s", DataType::String, "t"),
                NewChannel::index("t2"),
                NewChannel::data("q", DataType::F64, "t2"),
                NewChannel::virtual_("v", DataType::U8),
            ],
            false,
        )
        .await
        .unwrap();
    let ch = client.channels(&["t", "p", "n", "s"].map(|n| ChannelRef::Name(n.into()))).await.unwrap();
    for f in 0..5 {
        let rows = f * 5000..(f + 1) * 5000i32;
        let strings: Vec<String> = rows.clone().map(|i| format!("s{i}")).collect();
        let frame = Frame::new()
            .with(ch[0].key, Series::timestamps(rows.clone().map(|i| 1_000 + i as i64 * 10).collect()))
            .with(ch[1].key, Series::from_vec(rows.clone().map(|i| i as f64 * 0.5).collect::<Vec<_>>()))
            .with(ch[2].key, Series::from_vec(rows.clone().map(|i| i - 7).collect::<Vec<_>>()))
            .with(ch[3].key, Series::strings(&strings));
        client.write(TimeStamp(1_000 + rows.start as i64 * 10), frame).await.unwrap();
    }
}

fn names(xs: &[&str]) -> Vec<ChannelRef> {
    xs.iter().map(|n| ChannelRef::Name((*n).into())).collect()
}

#[test]
fn parquet_round_trips_every_row_in_chunks_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let client = telemetron::open(dir.path().join("db")).unwrap();
    rt().block_on(async {
        stand(&client).await;
        let path = dir.path().join("run.parquet");
        let mut cfg = ExportConfig::new(&path, names(&["p", "n", "s"]), TimeRange::MAX);
        cfg.memory_budget = 1 << 20; // 1 MiB: chunks of about 8,700 rows
        let mut seen: Vec<ExportProgress> = Vec::new();
        let report = client
            .export(cfg, &mut |p| {
                seen.push(*p);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!((report.rows, report.format), (N as u64, ExportFormat::Parquet));
        assert_eq!(report.columns, ["t", "p", "n", "s"]);
        assert!(seen.len() >= 3, "progress after each chunk: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0].rows <= w[1].rows && w[0].fraction <= w[1].fraction), "{seen:?}");
        assert_eq!(seen.last().unwrap().fraction, 1.0);

        let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap()).unwrap().build().unwrap();
        let mut row = 0usize;
        for b in reader {
            let b = b.unwrap();
            let t = b.column(0).as_any().downcast_ref::<TimestampNanosecondArray>().unwrap();
            let p = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
            let n = b.column(2).as_any().downcast_ref::<Int32Array>().unwrap();
            let s = b.column(3).as_any().downcast_ref::<LargeStringArray>().unwrap();
            for i in 0..b.num_rows() {
                assert_eq!(t.value(i), 1_000 + row as i64 * 10);
                assert_eq!(p.value(i), row as f64 * 0.5);
                assert_eq!(n.value(i), row as i32 - 7);
                assert_eq!(s.value(i), format!("s{row}"));
                row += 1;
            }
            assert_eq!(b.schema().field(1).metadata()["telemetron.data_type"], "f64");
        }
        assert_eq!(row, N);
        assert!(!fs::read_dir(dir.path()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".partial")));
    });
}

#[test]
fn csv_has_a_header_and_a_sub_range() {
    let dir = tempfile::tempdir().unwrap();
    let client = telemetron::open(dir.path().join("db")).unwrap();
    rt().block_on(async {
        stand(&client).await;
        let path = dir.path().join("part.csv");
        // Rows 100..110 (t = 2,000 .. 2,100).
        let cfg = ExportConfig::new(&path, names(&["n", "s"]), TimeRange::from_nanos(2_000, 2_100));
        let report = client.export(cfg, &mut |_| Ok(())).await.unwrap();
        assert_eq!(report.rows, 10);
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "t,n,s");
        assert_eq!(lines.len(), 11);
        assert!(lines[1].starts_with("1970-01-01T00:00:00.000002"), "{}", lines[1]);
        assert!(lines[1].ends_with(",93,s100"), "{}", lines[1]);
        // An empty range still writes the header.
        let empty = dir.path().join("empty.csv");
        let r = client.export(ExportConfig::new(&empty, names(&["n"]), TimeRange::from_nanos(0, 10)), &mut |_| Ok(())).await.unwrap();
        assert_eq!((r.rows, fs::read_to_string(&empty).unwrap()), (0, "t,n\n".to_string()));
    });
}

#[test]
fn bad_requests_are_refused_before_any_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let client = telemetron::open(dir.path().join("db")).unwrap();
    rt().block_on(async {
        stand(&client).await;
        let go = async |path: &str, chans: &[&str]| {
            client.export(ExportConfig::new(dir.path().join(path), names(chans), TimeRange::MAX), &mut |_| Ok(())).await
        };
        let e = go("x.parquet", &["p", "q"]).await.unwrap_err();
        assert!(e.to_string().contains("different indexes"), "{e}");
        let e = go("x.parquet", &["v"]).await.unwrap_err();
        assert!(e.to_string().contains("virtual"), "{e}");
        let e = go("x.xlsx", &["p"]).await.unwrap_err();
        assert!(e.to_string().contains(".parquet or .csv"), "{e}");
        let e = go("x.parquet", &["nope"]).await.unwrap_err();
        assert_eq!(e.code(), "channel.not_found", "{e}");
        let e = go("no/such/dir/x.csv", &["p"]).await.unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("cannot create"), "{e}");
        assert!(!dir.path().join("x.parquet").exists());
    });
}

#[test]
fn a_cancelled_export_keeps_the_old_file_and_leaves_no_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let client = telemetron::open(dir.path().join("db")).unwrap();
    rt().block_on(async {
        stand(&client).await;
        let path = dir.path().join("run.parquet");
        fs::write(&path, b"previous export").unwrap();
        let mut cfg = ExportConfig::new(&path, names(&["p"]), TimeRange::MAX);
        cfg.memory_budget = 1 << 20;
        let mut calls = 0;
        let e = client
            .export(cfg, &mut |_| {
                calls += 1;
                if calls == 2 { Err(Error::InvalidArgument { reason: "cancelled by the user".into() }) } else { Ok(()) }
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cancelled"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), b"previous export");
        let left: Vec<String> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(!left.iter().any(|n| n.ends_with(".partial")), "{left:?}");
    });
}
