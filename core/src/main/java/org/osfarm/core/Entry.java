package org.osfarm.core;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One entry of a directory: everything tar carries about a file, with its content by id.
 *
 * @param name the entry's name in its directory (bytes; never contains '/')
 * @param type what it is
 * @param mode permission bits including setuid, setgid and sticky ({@code 07777})
 * @param uid numeric owner
 * @param gid numeric group
 * @param uname owner name as the source recorded it (may be empty)
 * @param gname group name as the source recorded it (may be empty)
 * @param mtimeSeconds modification time, seconds since the epoch
 * @param mtimeNanos nanoseconds within the second
 * @param size content size in bytes (regular files), else 0
 * @param content for a file the content object (a blob, or a chunk list when {@link #chunked}); for
 *     a directory its tree; else null
 * @param fileDigest for a file, the SHA-256 of its whole content; else null
 * @param link symlink target, or for a hard link the path (from the image root) of the first name
 * @param devMajor device major number (char and block devices)
 * @param devMinor device minor number
 * @param xattrs extended attributes, sorted by name
 * @param extras other tar extended-header records, kept verbatim and sorted by key
 * @param flags {@link #IMPLICIT}, {@link #CHUNKED}
 */
public record Entry(
    byte[] name,
    EntryType type,
    int mode,
    long uid,
    long gid,
    byte[] uname,
    byte[] gname,
    long mtimeSeconds,
    int mtimeNanos,
    long size,
    Digest content,
    Digest fileDigest,
    byte[] link,
    long devMajor,
    long devMinor,
    List<Attr> xattrs,
    List<Attr> extras,
    int flags) {

  /** The source had no entry for this directory; it exists because something is inside it. */
  public static final int IMPLICIT = 1;

  /** The file's content is a chunk list, not a single blob. */
  public static final int CHUNKED = 2;

  public Entry {
    Objects.requireNonNull(name);
    Objects.requireNonNull(type);
    uname = uname == null ? new byte[0] : uname;
    gname = gname == null ? new byte[0] : gname;
    link = link == null ? new byte[0] : link;
    xattrs = List.copyOf(xattrs);
    extras = List.copyOf(extras);
  }

  public boolean isImplicit() {
    return (flags & IMPLICIT) != 0;
  }

  public boolean chunked() {
    return (flags & CHUNKED) != 0;
  }

  public String nameString() {
    return Bytes.escape(name);
  }

  /** This entry under another name. */
  public Entry withName(byte[] newName) {
    return new Entry(
        newName,
        type,
        mode,
        uid,
        gid,
        uname,
        gname,
        mtimeSeconds,
        mtimeNanos,
        size,
        content,
        fileDigest,
        link,
        devMajor,
        devMinor,
        xattrs,
        extras,
        flags);
  }

  /** This entry with other content (a directory's new tree). */
  public Entry withContent(Digest newContent) {
    return new Entry(
        name,
        type,
        mode,
        uid,
        gid,
        uname,
        gname,
        mtimeSeconds,
        mtimeNanos,
        size,
        newContent,
        fileDigest,
        link,
        devMajor,
        devMinor,
        xattrs,
        extras,
        flags);
  }

  /** True if everything but the name and content (for directories: the tree) is the same. */
  public boolean sameMetadata(Entry o) {
    return type == o.type
        && mode == o.mode
        && uid == o.uid
        && gid == o.gid
        && mtimeSeconds == o.mtimeSeconds
        && mtimeNanos == o.mtimeNanos
        && Arrays.equals(link, o.link)
        && devMajor == o.devMajor
        && devMinor == o.devMinor
        && xattrs.equals(o.xattrs);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Entry e
        && Arrays.equals(name, e.name)
        && type == e.type
        && mode == e.mode
        && uid == e.uid
        && gid == e.gid
        && Arrays.equals(uname, e.uname)
        && Arrays.equals(gname, e.gname)
        && mtimeSeconds == e.mtimeSeconds
        && mtimeNanos == e.mtimeNanos
        && size == e.size
        && Objects.equals(content, e.content)
        && Objects.equals(fileDigest, e.fileDigest)
        && Arrays.equals(link, e.link)
        && devMajor == e.devMajor
        && devMinor == e.devMinor
        && xattrs.equals(e.xattrs)
        && extras.equals(e.extras)
        && flags == e.flags;
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(name) * 31 + Objects.hashCode(content);
  }

  @Override
  public String toString() {
    return type.label() + " " + nameString();
  }
}
