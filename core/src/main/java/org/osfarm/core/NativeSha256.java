package org.osfarm.core;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.security.DigestException;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import org.osfarm.core.posix.Posix;

/**
 * SHA-256 computed by the system's libcrypto (OpenSSL 3, {@code SHA256_Init/Update/Final}) through
 * the foreign function API.
 *
 * <p>Why: the JDK's SHA-256 reaches the CPU's SHA instructions only once C2 has compiled its
 * caller; until then it runs at 5-10% of that speed, and a command that lives one or two seconds (a
 * fetch, the first read of a fresh mount) spends much of its life there. libcrypto runs at full
 * speed from the first byte. It also hashes a direct or mapped buffer where it lies, where the
 * JDK's digest copies it through a 4 KiB array first.
 *
 * <p>The context ({@code SHA256_CTX}, 112 bytes of plain data) lives in a Java {@code long[]} that
 * the calls reach as heap memory ({@link Linker.Option#critical(boolean) critical} downcalls): no
 * native allocation to free, and {@link #clone} is an array copy. Used by {@link
 * Digest#newMessageDigest} when {@link #AVAILABLE}: libcrypto found, native access enabled for this
 * code, and the known-answer test passed; otherwise the JDK's digest is used ({@code
 * -Dosfarm.nativeSha256=false} forces that).
 */
final class NativeSha256 extends MessageDigest implements Cloneable {
  /** {@code sizeof(SHA256_CTX)} is 112; room to spare. */
  private static final int CTX_LONGS = 16;

  private static final MethodHandle INIT;
  private static final MethodHandle UPDATE;
  private static final MethodHandle FINAL;

  /** True if this class computes SHA-256 here (see the class comment). */
  static final boolean AVAILABLE;

  /** Why {@link #AVAILABLE} is false (for diagnostics), or null. */
  static final String UNAVAILABLE_BECAUSE;

  static {
    MethodHandle init = null;
    MethodHandle update = null;
    MethodHandle fin = null;
    String why = null;
    if (!Boolean.parseBoolean(System.getProperty("osfarm.nativeSha256", "true"))) {
      why = "turned off (-Dosfarm.nativeSha256=false)";
    } else if (!NativeSha256.class.getModule().isNativeAccessEnabled()) {
      why = "native access is not enabled for osfarm (--enable-native-access)";
    } else {
      try {
        Linker linker = Linker.nativeLinker();
        SymbolLookup crypto = SymbolLookup.libraryLookup("libcrypto.so.3", Arena.global());
        Linker.Option heap = Linker.Option.critical(true);
        init =
            linker.downcallHandle(
                crypto.find("SHA256_Init").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS),
                heap);
        update =
            linker.downcallHandle(
                crypto.find("SHA256_Update").orElseThrow(),
                FunctionDescriptor.of(
                    ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG),
                heap);
        fin =
            linker.downcallHandle(
                crypto.find("SHA256_Final").orElseThrow(),
                FunctionDescriptor.of(
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS),
                heap);
      } catch (RuntimeException | LinkageError e) {
        why = "libcrypto.so.3 not usable: " + e;
        init = update = fin = null;
      }
    }
    INIT = init;
    UPDATE = update;
    FINAL = fin;
    if (why == null) {
      why = knownAnswerFailure();
    }
    AVAILABLE = why == null;
    UNAVAILABLE_BECAUSE = why;
  }

  private long[] ctx = new long[CTX_LONGS];

  NativeSha256() {
    super("SHA-256");
    if (INIT == null) {
      throw new IllegalStateException("libcrypto's SHA-256 is not available");
    }
    init();
  }

  private static String knownAnswerFailure() {
    try {
      NativeSha256 md = new NativeSha256();
      md.update("abc".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      String got = HexFormat.of().formatHex(md.digest());
      String want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
      return got.equals(want) ? null : "libcrypto's SHA-256 of \"abc\" is " + got;
    } catch (RuntimeException e) {
      return "libcrypto's SHA-256 failed: " + e;
    }
  }

  private void init() {
    try {
      check((int) INIT.invokeExact(MemorySegment.ofArray(ctx)), "SHA256_Init");
    } catch (Throwable t) {
      throw Posix.rethrow(t);
    }
  }

  private void update(MemorySegment data) {
    try {
      check(
          (int) UPDATE.invokeExact(MemorySegment.ofArray(ctx), data, data.byteSize()),
          "SHA256_Update");
    } catch (Throwable t) {
      throw Posix.rethrow(t);
    }
  }

  private static void check(int rc, String what) {
    if (rc != 1) {
      throw new IllegalStateException(what + " failed");
    }
  }

  @Override
  protected void engineUpdate(byte input) {
    update(MemorySegment.ofArray(new byte[] {input}));
  }

  @Override
  protected void engineUpdate(byte[] input, int offset, int len) {
    if (len > 0) {
      update(MemorySegment.ofArray(input).asSlice(offset, len));
    }
  }

  @Override
  protected void engineUpdate(ByteBuffer input) {
    int n = input.remaining();
    if (n > 0) {
      update(MemorySegment.ofBuffer(input)); // position to limit, heap or direct, where it lies
      input.position(input.limit());
    }
  }

  @Override
  protected byte[] engineDigest() {
    byte[] out = new byte[Digest.LENGTH];
    finish(out, 0);
    return out;
  }

  @Override
  protected int engineDigest(byte[] buf, int offset, int len) throws DigestException {
    if (len < Digest.LENGTH) {
      throw new DigestException("SHA-256 needs 32 bytes, the buffer has " + len);
    }
    finish(buf, offset);
    return Digest.LENGTH;
  }

  private void finish(byte[] out, int offset) {
    try {
      check(
          (int)
              FINAL.invokeExact(
                  MemorySegment.ofArray(out).asSlice(offset, Digest.LENGTH),
                  MemorySegment.ofArray(ctx)),
          "SHA256_Final");
    } catch (Throwable t) {
      throw Posix.rethrow(t);
    }
    init();
  }

  @Override
  protected void engineReset() {
    init();
  }

  @Override
  protected int engineGetDigestLength() {
    return Digest.LENGTH;
  }

  @Override
  public Object clone() throws CloneNotSupportedException {
    NativeSha256 copy = (NativeSha256) super.clone();
    copy.ctx = Arrays.copyOf(ctx, ctx.length);
    return copy;
  }
}
