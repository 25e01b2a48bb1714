//! Tables on disk: Parquet with key-value metadata, written atomically (see
//! [`crate::atomic_file`]) so that every Parquet reader opens it, and CSV.
//!
//! polars' own `ParquetWriter` stores strings with Arrow's `string_view` type in the file's Arrow
//! schema, which pyarrow before 16 (and pandas on it) cannot read. So the row groups are written
//! here with polars-parquet's `FileWriter` from an Arrow schema at `CompatLevel::oldest()`:
//! strings become `large_string`, everything else keeps its type. Row groups, encodings,
//! compression (Zstd) and statistics are those polars would choose.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use polars::prelude::*;
use polars_parquet::write::{
    get_dtype_encoding, schema_to_metadata_key, CompressionOptions, FileWriter, KeyValue,
    RowGroupIterator, StatisticsOptions, Version, WriteOptions,
};

pub use crate::atomic_file::{write_atomic, write_new, write_text};
use crate::error::{Error, Result};

/// Rows per row group (polars' default).
const ROW_GROUP_ROWS: usize = 512 * 512;

/// Writes a frame as Zstd-compressed Parquet with key-value metadata, atomically.
pub fn write_parquet(path: &Path, df: &mut DataFrame, metadata: &[(String, String)]) -> Result<()> {
    write_atomic(path, |file| {
        write_compatible(file, df, metadata)
            .map_err(|e| Error::table(format!("writing {}", path.display()), e))
    })
}

/// Like [`write_parquet`], but never replaces a file: `false` when `path` exists already.
pub fn write_parquet_new(
    path: &Path,
    df: &mut DataFrame,
    metadata: &[(String, String)],
) -> Result<bool> {
    write_new(path, |file| {
        write_compatible(file, df, metadata)
            .map_err(|e| Error::table(format!("writing {}", path.display()), e))
    })
}

/// The Parquet encoding of `df` with plain (large) strings; see the module documentation.
fn write_compatible(
    file: &mut File,
    df: &mut DataFrame,
    metadata: &[(String, String)],
) -> PolarsResult<()> {
    let mut sink = ParquetSink::new(file, df.schema())?;
    sink.write(df)?;
    sink.finish(metadata)
}

/// Like [`write_parquet_new`], for a table too big to hold: `fill` hands the sink its frames,
/// each of `schema`, one after another; each becomes row groups of the file as it comes.
pub fn write_parquet_batches_new(
    path: &Path,
    schema: &Schema,
    metadata: &[(String, String)],
    fill: impl FnOnce(&mut ParquetSink) -> Result<()>,
) -> Result<bool> {
    let table_error = |e| Error::table(format!("writing {}", path.display()), e);
    write_new(path, |file| {
        let mut sink = ParquetSink::new(file, schema).map_err(table_error)?;
        fill(&mut sink)?;
        sink.finish(metadata).map_err(table_error)
    })
}

/// A Parquet file being written a frame at a time (all of one schema), then its footer.
pub struct ParquetSink<'f> {
    writer: FileWriter<std::io::BufWriter<&'f mut File>>,
    schema: ArrowSchema,
    options: WriteOptions,
}

impl<'f> ParquetSink<'f> {
    fn new(file: &'f mut File, schema: &Schema) -> PolarsResult<ParquetSink<'f>> {
        let schema = schema.to_arrow(CompatLevel::oldest());
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            compression: CompressionOptions::Zstd(None),
            version: Version::V1,
            data_page_size: None,
        };
        // Buffered: the writer emits its Thrift headers a byte at a time (a system call each).
        let buffered = std::io::BufWriter::with_capacity(1 << 16, file);
        let writer = FileWriter::try_new(buffered, schema.clone(), options)?;
        Ok(ParquetSink {
            writer,
            schema,
            options,
        })
    }

    /// Appends `df`'s rows, in row groups of at most [`ROW_GROUP_ROWS`].
    pub fn write(&mut self, df: &mut DataFrame) -> PolarsResult<()> {
        let chunked = polars::frame::chunk_df_for_writing(df, ROW_GROUP_ROWS)?;
        let batches = chunked.iter_chunks(CompatLevel::oldest(), false).map(Ok);
        let encodings = self
            .schema
            .iter_values()
            .map(|f| get_dtype_encoding(&f.dtype))
            .collect();
        let row_groups = RowGroupIterator::try_new(batches, &self.schema, self.options, encodings)?;
        for group in row_groups {
            self.writer.write(u64::MAX, group?)?;
        }
        Ok(())
    }

    fn finish(mut self, metadata: &[(String, String)]) -> PolarsResult<()> {
        let mut key_values = vec![schema_to_metadata_key(self.writer.schema())];
        key_values.extend(metadata.iter().map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(v.clone()),
        }));
        self.writer.end(Some(key_values))?;
        self.writer.into_inner().flush()?;
        Ok(())
    }
}

/// Writes a frame as CSV, atomically.
pub fn write_csv(path: &Path, df: &mut DataFrame) -> Result<()> {
    write_atomic(path, |file| {
        CsvWriter::new(file)
            .include_header(true)
            .finish(df)
            .map_err(|e| Error::table(format!("writing {}", path.display()), e))
    })
}

/// Reads a Parquet file into a frame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::table(format!("reading {}", path.display()), e))
}

/// The value of one key-value metadata entry of a Parquet file, if present.
pub fn read_metadata_value(path: &Path, key: &str) -> Result<Option<String>> {
    let mut file =
        File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut reader = ParquetReader::new(&mut file);
    let meta = reader
        .get_metadata()
        .map_err(|e| Error::table(format!("reading the metadata of {}", path.display()), e))?;
    Ok(meta.key_value_metadata().as_ref().and_then(|kv| {
        kv.iter()
            .find(|k| k.key == key)
            .and_then(|k| k.value.clone())
    }))
}
