//! An ordered pipeline over a stream of lines: each worker takes the next
//! chunk of whole lines from the reader (under a lock, so chunks are cut in
//! stream order), processes it on its own core while the bytes it just
//! copied are still in that core's cache, and one merger hands the results
//! on in stream order. No core waits for another at a chunk boundary, and
//! nothing is read by one core to be processed by another.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex, PoisonError};

/// Buffers per worker: one being processed, one waiting for the merger.
const BUFFERS_PER_WORKER: usize = 2;

/// The reader and what is cut from it next.
struct Source<R> {
    reader: R,
    /// The start of a line the previous chunk could not hold whole.
    carry: Vec<u8>,
    next_seq: u64,
    finished: bool,
}

impl<R: Read> Source<R> {
    /// Fills `buf` with the carried bytes, then whole lines, about `chunk`
    /// bytes more (a longer line grows it; the stream's last line may lack
    /// its `\n`). Returns the chunk's number and length, or `None` once
    /// the stream is done. A read error gets a number of its own and ends
    /// the stream.
    fn next_chunk(&mut self, buf: &mut Vec<u8>, chunk: usize) -> Option<(u64, io::Result<usize>)> {
        if self.finished {
            return None;
        }
        let result = self.fill(buf, chunk);
        if matches!(result, Ok(0) | Err(_)) {
            self.finished = true;
        }
        if let Ok(0) = result {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Some((seq, result))
    }

    fn fill(&mut self, buf: &mut Vec<u8>, chunk: usize) -> io::Result<usize> {
        let mut filled = self.carry.len();
        if buf.len() < filled + chunk {
            buf.resize(filled + chunk, 0);
        }
        buf[..filled].copy_from_slice(&self.carry);
        let end = loop {
            if filled == buf.len() {
                // One line longer than the buffer: grow to hold it.
                buf.resize(buf.len() * 2, 0);
            }
            let read = read_some(&mut self.reader, &mut buf[filled..])?;
            filled += read;
            // `read_some` stops short only at the end of the stream.
            if filled < buf.len() {
                self.finished = true;
                break filled;
            }
            if let Some(last) = memchr::memrchr(b'\n', &buf[..filled]) {
                break last + 1;
            }
        };
        self.carry.clear();
        self.carry.extend_from_slice(&buf[end..filled]);
        Ok(end)
    }
}

/// Fills as much of `buf` as the reader gives before its end.
pub(super) fn read_some<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut total = 0;
    while total < buf.len() {
        match reader.read(&mut buf[total..]) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// One processed chunk on its way to the merger.
struct Done<T> {
    seq: u64,
    worker: usize,
    buf: Vec<u8>,
    result: io::Result<(usize, T)>,
}

/// Reads `reader` to its end in chunks of whole lines (about `chunk`
/// bytes), runs `work` on each on `threads` cores, and calls `visit` with
/// each chunk and its result in stream order. Stops at the first error,
/// from the reader, `work` or `visit`. Memory: `threads` x 2 chunks.
pub fn run<R, T, W, V>(reader: R, chunk: usize, threads: usize, work: W, mut visit: V) -> io::Result<()>
where
    R: Read + Send,
    T: Send,
    W: Fn(&[u8]) -> io::Result<T> + Sync,
    V: FnMut(&[u8], T) -> io::Result<()>,
{
    let source = Mutex::new(Source { reader, carry: Vec::new(), next_seq: 0, finished: false });
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (done, incoming) = mpsc::channel();
        let mut recycle = Vec::with_capacity(threads);
        for worker in 0..threads.max(1) {
            let (give_back, spare) = mpsc::channel();
            recycle.push(give_back);
            let done = done.clone();
            let (source, stop, work) = (&source, &stop, &work);
            scope.spawn(move || run_worker(worker, source, stop, spare, done, chunk, work));
        }
        drop(done);
        let result = merge(incoming, recycle, &mut visit);
        // Workers that still hold a buffer see this before they read on;
        // the others find their spare channel closed.
        stop.store(true, Ordering::Relaxed);
        result
    })
}

fn run_worker<R: Read, T, W: Fn(&[u8]) -> io::Result<T>>(
    worker: usize,
    source: &Mutex<Source<R>>,
    stop: &AtomicBool,
    spare: mpsc::Receiver<Vec<u8>>,
    done: mpsc::Sender<Done<T>>,
    chunk: usize,
    work: &W,
) {
    let mut allocated = 0;
    loop {
        let mut buf = match spare.try_recv() {
            Ok(buf) => buf,
            Err(_) if allocated < BUFFERS_PER_WORKER => {
                allocated += 1;
                Vec::new()
            }
            Err(_) => match spare.recv() {
                Ok(buf) => buf,
                Err(_) => return,
            },
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let next = source.lock().unwrap_or_else(PoisonError::into_inner).next_chunk(&mut buf, chunk);
        let Some((seq, read)) = next else { return };
        // A panic in `work` would leave the merger waiting for this chunk.
        let result = read.and_then(|len| {
            catch_unwind(AssertUnwindSafe(|| work(&buf[..len])))
                .unwrap_or_else(|_| Err(io::Error::other("a chunk's check panicked")))
                .map(|value| (len, value))
        });
        if done.send(Done { seq, worker, buf, result }).is_err() {
            return;
        }
    }
}

/// Hands the workers' results to `visit` in stream order and gives each
/// buffer back to the worker it came from.
fn merge<T>(
    incoming: mpsc::Receiver<Done<T>>,
    recycle: Vec<mpsc::Sender<Vec<u8>>>,
    visit: &mut impl FnMut(&[u8], T) -> io::Result<()>,
) -> io::Result<()> {
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    for done in incoming {
        waiting.insert(done.seq, done);
        while let Some(done) = waiting.remove(&next) {
            next += 1;
            let (len, value) = done.result?;
            visit(&done.buf[..len], value)?;
            // The worker may have stopped already: the buffer is then dropped.
            let _ = recycle[done.worker].send(done.buf);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chunk as `work` saw it, in the order `visit` got them.
    fn chunks(input: &[u8], chunk: usize, threads: usize) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        run(
            input,
            chunk,
            threads,
            |bytes| Ok(bytes.to_vec()),
            |bytes, copy| {
                assert_eq!(bytes, copy.as_slice());
                seen.push(copy);
                Ok(())
            },
        )
        .unwrap();
        seen
    }

    #[test]
    fn chunks_are_whole_lines_in_stream_order() {
        let input: Vec<u8> = (0..20_000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        for threads in [1, 2, 4] {
            let seen = chunks(&input, 1000, threads);
            assert!(seen.len() > 100);
            assert!(seen.iter().all(|c| c.ends_with(b"\n")));
            assert_eq!(seen.concat(), input);
        }
    }

    #[test]
    fn a_line_longer_than_a_chunk_stays_whole_and_the_last_may_lack_its_newline() {
        let long = "x".repeat(5000);
        let input = format!("a\n{long}\nb\nc");
        let seen = chunks(input.as_bytes(), 64, 2);
        assert_eq!(seen.concat(), input.as_bytes());
        assert!(seen.iter().any(|c| memchr::memmem::find(c, format!("\n{long}\n").as_bytes()).is_some()
            || c.starts_with(format!("{long}\n").as_bytes())));
        assert!(seen.last().unwrap().ends_with(b"\nc"));
    }

    #[test]
    fn a_panic_in_a_chunk_is_an_error_not_a_hang() {
        let input: Vec<u8> = (0..10_000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
        let result = run(
            input.as_slice(),
            100,
            2,
            |bytes| {
                assert!(!bytes.starts_with(b"5000\n") && memchr::memmem::find(bytes, b"\n5000\n").is_none());
                Ok(())
            },
            |_, ()| Ok(()),
        );
        assert_eq!(result.unwrap_err().to_string(), "a chunk's check panicked");
    }

    #[test]
    fn an_empty_stream_visits_nothing() {
        assert!(chunks(b"", 64, 2).is_empty());
    }

    #[test]
    fn the_first_error_stops_the_pipeline_and_is_returned() {
        let input: Vec<u8> = (0..10_000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
        let mut visited = 0;
        let result = run(
            input.as_slice(),
            100,
            2,
            |bytes| match bytes.starts_with(b"5000\n") || memchr::memmem::find(bytes, b"\n5000\n").is_some() {
                true => Err(io::Error::other("bad chunk")),
                false => Ok(()),
            },
            |_, ()| {
                visited += 1;
                Ok(())
            },
        );
        assert_eq!(result.unwrap_err().to_string(), "bad chunk");
        assert!(visited > 0);

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let result = run(Failing, 100, 2, |_| Ok(()), |_, ()| Ok(()));
        assert_eq!(result.unwrap_err().to_string(), "disk gone");
    }
}
