package org.osfarm.bench;

import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;
import org.osfarm.core.Digest;
import org.osfarm.core.chunk.FastCdc;

/**
 * The per-byte work of publish: SHA-256 and FastCDC over 8 MiB of random data. Throughput in ops/s;
 * multiply by 8 MiB for bytes per second. Run: {@code java -jar bench/target/benchmarks.jar
 * HotPath}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class HotPathBenchmark {
  private byte[] data;
  private final FastCdc cdc = new FastCdc();

  @Setup
  public void setup() {
    data = new byte[8 << 20];
    new Random(42).nextBytes(data);
  }

  @Benchmark
  public Digest sha256() {
    return Digest.of(data); // libcrypto when usable (Digest.isNativeSha256), else the JDK's
  }

  /** The JDK's own SHA-256 (SHA-NI intrinsics once compiled), for the side-by-side. */
  @Benchmark
  public byte[] sha256Jdk() throws java.security.GeneralSecurityException {
    return java.security.MessageDigest.getInstance("SHA-256", "SUN").digest(data);
  }

  @Benchmark
  public void fastCdc(Blackhole bh) {
    int off = 0;
    while (off < data.length) {
      int n = cdc.cut(data, off, data.length - off);
      bh.consume(n);
      off += n;
    }
  }
}
