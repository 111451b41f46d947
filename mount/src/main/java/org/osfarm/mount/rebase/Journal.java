package org.osfarm.mount.rebase;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The write-ahead journal of a rebase, {@code rebase-backup-<time>/journal}: one line per step,
 * written and fsynced <em>before</em> the step touches the upper directory, so an interrupted
 * rebase can be undone step by step in reverse ({@link Rebase#rollback}). Fields are separated by
 * tabs; paths are escaped ({@code \t}, {@code \n}, {@code \\}).
 *
 * <pre>
 * begin  BASE ONTO
 * move   PATH                 upper/PATH moved to backup/upper/PATH
 * create PATH                 a new file written at upper/PATH
 * attrs  PATH MODE UID GID    the directory's attributes before they were changed
 * chown  PATH UID GID MODE    the file's owner and mode before it was re-owned
 * xattr  PATH NAME HEX        an extended attribute's value before it was rewritten
 * base   OLD NEW              the properties file is being switched from OLD to NEW
 * done | rolled-back
 * </pre>
 */
final class Journal implements AutoCloseable {
  static final String FILE = "journal";

  private final FileChannel ch;

  private Journal(FileChannel ch) {
    this.ch = ch;
  }

  static Journal create(Path file) throws IOException {
    return new Journal(
        FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE));
  }

  static Journal append(Path file) throws IOException {
    return new Journal(FileChannel.open(file, StandardOpenOption.APPEND));
  }

  /** Appends lines and makes them durable. */
  void write(List<String> lines) throws IOException {
    if (lines.isEmpty()) {
      return;
    }
    StringBuilder sb = new StringBuilder();
    for (String l : lines) {
      sb.append(l).append('\n');
    }
    ByteBuffer b = ByteBuffer.wrap(sb.toString().getBytes(StandardCharsets.UTF_8));
    while (b.hasRemaining()) {
      ch.write(b);
    }
    ch.force(true);
  }

  void write(String... fields) throws IOException {
    write(List.of(line(fields)));
  }

  static String line(String... fields) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < fields.length; i++) {
      if (i > 0) {
        sb.append('\t');
      }
      sb.append(fields[i].replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n"));
    }
    return sb.toString();
  }

  static List<String[]> read(Path file) throws IOException {
    List<String[]> out = new ArrayList<>();
    for (String l : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      if (l.isEmpty()) {
        continue;
      }
      String[] f = l.split("\t", -1);
      for (int i = 0; i < f.length; i++) {
        f[i] = unescape(f[i]);
      }
      out.add(f);
    }
    return out;
  }

  private static String unescape(String s) {
    if (s.indexOf('\\') < 0) {
      return s;
    }
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && i + 1 < s.length()) {
        char n = s.charAt(++i);
        sb.append(n == 't' ? '\t' : n == 'n' ? '\n' : n);
      } else {
        sb.append(c);
      }
    }
    return sb.toString();
  }

  /** True if the journal ends with {@code done} or {@code rolled-back}. */
  static boolean finished(Path file) throws IOException {
    List<String[]> l = read(file);
    if (l.isEmpty()) {
      return false;
    }
    String last = l.get(l.size() - 1)[0];
    return last.equals("done") || last.equals("rolled-back");
  }

  @Override
  public void close() throws IOException {
    ch.close();
  }
}
