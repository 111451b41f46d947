package org.osfarm.cli;

import java.io.PrintWriter;
import org.osfarm.transfer.FetchResult;
import org.osfarm.transfer.TransferResult;

/** How transfer commands print their results. */
final class TransferRendering {
  private TransferRendering() {}

  static void print(PrintWriter err, String verb, TransferResult r) {
    err.printf(
        "%s %s: %,d objects (%,.1f MB) sent, %,d objects (%,.1f MB) already there,"
            + " %,.1f MB on the wire, %.2f s; ref %s%n",
        verb,
        r.snapshot().shortHex(12),
        r.objectsSent(),
        r.bytesSent() / 1e6,
        r.objectsPresent(),
        r.bytesPresent() / 1e6,
        r.wireBytes() / 1e6,
        r.seconds(),
        r.ref().name().toLowerCase(java.util.Locale.ROOT));
  }

  static void print(PrintWriter out, FetchResult r, double diskRate, double linkRate) {
    double vd =
        diskRate > 0 ? diskRate : measured(r.reusedBytes() + r.zeroBytes(), r.localSeconds());
    double vn = linkRate > 0 ? linkRate : measured(r.fetchedBytes(), r.netSeconds());
    out.printf("content   %s%n", r.root().hex());
    out.printf("total     %,d bytes%n", r.size());
    out.printf("reused    %,d bytes from seeds, %,d zero bytes%n", r.reusedBytes(), r.zeroBytes());
    if (r.resumedBytes() > 0) {
      out.printf("resumed   %,d bytes verified by an earlier fetch%n", r.resumedBytes());
    }
    out.printf("fetched   %,d bytes%n", r.fetchedBytes());
    out.printf("wire      %,d bytes%n", r.wireBytes());
    out.printf("seconds   %.3f%n", r.seconds());
    out.printf("observed  %.1f MB/s%n", r.observedBandwidth() / 1e6);
    if (vd > 0 && vn > 0) {
      out.printf(
          "bound     %.1f MB/s serial, %.1f MB/s overlapped (v_d %.1f MB/s, v_n %.1f MB/s)%n",
          r.serialBound(vd, vn) / 1e6, r.overlappedBound(vd, vn) / 1e6, vd / 1e6, vn / 1e6);
    }
    if (r.refetchedGroups() > 0) {
      out.printf("refetched %d groups whose seed blocks did not verify%n", r.refetchedGroups());
    }
  }

  private static double measured(long bytes, double seconds) {
    return bytes > 0 && seconds > 0 ? bytes / seconds : 0;
  }
}
