// Reads one file of a remote snapshot through RemoteObjectSource as the mount reads it (each chunk
// on demand, the next DEPTH chunks hinted), without FUSE: isolates the remote source's throughput.
//   java -cp mount/target/classes:transfer/target/classes:cli/target/osfarm.jar \
//     bench/mount/RemoteRead.java URL REF PATH [DEPTH=16]
// Prints: bytes seconds MB/s wire-bytes objects
import java.util.ArrayList;
import java.util.List;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.ObjectCodec;
import org.osfarm.mount.remote.RemoteObjectSource;

public class RemoteRead {
  public static void main(String[] a) throws Exception {
    int depth = a.length > 3 ? Integer.parseInt(a[3]) : 16;
    long t0 = System.nanoTime();
    try (RemoteObjectSource src = RemoteObjectSource.open(a[0])) {
      Digest snap = src.resolve(a[1]);
      Digest tree = ObjectCodec.decodeSnapshot(snap, src.read(snap)).tree();
      Entry file = null;
      String[] parts = a[2].replaceAll("^/+", "").split("/");
      for (int p = 0; p < parts.length; p++) {
        file = null;
        for (Entry e : ObjectCodec.decodeTree(tree, src.read(tree))) {
          if (e.nameString().equals(parts[p])) {
            file = e;
          }
        }
        if (file == null) throw new IllegalArgumentException("no " + a[2]);
        tree = file.content();
      }
      List<Digest> chunks = new ArrayList<>();
      if (file.chunked()) {
        for (ObjectCodec.Chunk c :
            ObjectCodec.decodeChunkList(file.content(), src.read(file.content())).chunks()) {
          chunks.add(c.id());
        }
      } else {
        chunks.add(file.content());
      }
      long n = 0;
      for (int i = 0; i < chunks.size(); i++) {
        src.prefetch(chunks.subList(Math.min(chunks.size(), i + 1), Math.min(chunks.size(), i + 1 + depth)));
        n += src.read(chunks.get(i)).length;
      }
      double s = (System.nanoTime() - t0) / 1e9;
      System.out.printf("%d %.3f %.1f %d %d%n", n, s, n / s / 1e6, src.bytesFetched(), src.objectsFetched());
    }
  }
}
