package org.osfarm.core.tar;

import java.util.List;
import org.osfarm.core.Attr;

/**
 * One tar entry's header after extended headers are applied: raw name bytes, every field tar
 * carries, extended attributes ({@code SCHILY.xattr.*}), and any other extended-header records
 * verbatim.
 *
 * @param typeflag the tar type byte ('0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5'
 *     dir, '6' fifo)
 * @param mode permission bits ({@code 07777})
 */
public record TarHeader(
    byte[] name,
    byte typeflag,
    int mode,
    long uid,
    long gid,
    byte[] uname,
    byte[] gname,
    long mtimeSeconds,
    int mtimeNanos,
    long size,
    byte[] linkName,
    long devMajor,
    long devMinor,
    List<Attr> xattrs,
    List<Attr> extras) {}
