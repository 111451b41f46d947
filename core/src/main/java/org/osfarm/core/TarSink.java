package org.osfarm.core;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.osfarm.core.tar.TarHeader;
import org.osfarm.core.tar.TarWriter;

/** Writes an export as a pax tar archive, names prefixed as the source had them ("./" or not). */
final class TarSink implements ExportSink {
  private final TarWriter tar;
  private final byte[] prefix;
  private final boolean writeRoot;

  private final boolean deriveAclText;

  /**
   * @param deriveAclText add GNU tar's ACL text records derived from binary ACL xattrs (for
   *     snapshots read from a directory, whose entries have no such records)
   */
  TarSink(OutputStream out, boolean dotPrefix, boolean writeRoot, boolean deriveAclText) {
    this.deriveAclText = deriveAclText;
    this.tar = new TarWriter(out);
    this.prefix = dotPrefix ? new byte[] {'.', '/'} : new byte[0];
    this.writeRoot = writeRoot;
  }

  private byte[] name(byte[] path, boolean dir) {
    byte[] n = Arrays.copyOf(prefix, prefix.length + path.length + (dir ? 1 : 0));
    System.arraycopy(path, 0, n, prefix.length, path.length);
    if (dir) {
      n[n.length - 1] = '/';
    }
    return n;
  }

  @Override
  public void root(Entry root) throws IOException {
    if (writeRoot && !root.isImplicit()) {
      tar.putHeader(
          header(
              prefix.length > 0 ? prefix : new byte[] {'.', '/'}, root, (byte) '5', new byte[0]));
    }
  }

  @Override
  public void enter(byte[] path, Entry dir) throws IOException {
    if (!dir.isImplicit()) {
      tar.putHeader(header(name(path, true), dir, (byte) '5', new byte[0]));
    }
  }

  @Override
  public void leave(byte[] path, Entry dir) {}

  @Override
  public void entry(byte[] path, Entry e, InputStream content) throws IOException {
    byte type =
        switch (e.type()) {
          case FILE -> '0';
          case HARDLINK -> '1';
          case SYMLINK -> '2';
          case CHAR -> '3';
          case BLOCK -> '4';
          case FIFO -> '6';
          default -> 0;
        };
    if (type == 0) {
      return; // sockets: tar cannot carry them
    }
    byte[] link = e.type() == EntryType.HARDLINK ? name(e.link(), false) : e.link();
    tar.putHeader(header(name(path, false), e, type, link));
    if (type == '0') {
      tar.copy(content);
    }
  }

  private TarHeader header(byte[] name, Entry e, byte type, byte[] link) {
    return new TarHeader(
        name,
        type,
        e.mode(),
        e.uid(),
        e.gid(),
        e.uname(),
        e.gname(),
        e.mtimeSeconds(),
        e.mtimeNanos(),
        type == '0' ? e.size() : 0,
        link,
        e.devMajor(),
        e.devMinor(),
        e.xattrs(),
        withAclText(e));
  }

  /**
   * GNU tar restores ACLs from {@code SCHILY.acl.*} text records, not from the binary xattrs; an
   * entry read from a directory has only the latter, so the text is derived for it.
   */
  private List<Attr> withAclText(Entry e) {
    List<Attr> extras = e.extras();
    if (!deriveAclText) {
      return extras;
    }
    List<Attr> added = null;
    for (Attr x : e.xattrs()) {
      String key =
          switch (x.nameString()) {
            case "system.posix_acl_access" -> "SCHILY.acl.access";
            case "system.posix_acl_default" -> "SCHILY.acl.default";
            default -> null;
          };
      if (key == null || extras.stream().anyMatch(a -> a.nameString().equals(key))) {
        continue;
      }
      byte[] text = PosixAcl.toText(x.valueRef());
      if (text != null) {
        if (added == null) {
          added = new ArrayList<>(extras);
        }
        added.add(Attr.of(key, text));
      }
    }
    if (added == null) {
      return extras;
    }
    added.sort(null);
    return added;
  }

  @Override
  public void finish() throws IOException {
    tar.finish();
  }

  @Override
  public void close() throws IOException {
    tar.close();
  }
}
