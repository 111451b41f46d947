package org.osfarm.mount.rebase;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Record-by-record three-way merge of {@code /etc/passwd}, {@code /etc/group}, {@code /etc/shadow}
 * and {@code /etc/gshadow}: BASE is the file of the snapshot the local changes were made over,
 * LOCAL the file with the local changes, ONTO the file of the new snapshot.
 *
 * <p>Rules, per record (keyed by name):
 *
 * <ul>
 *   <li>The result starts from ONTO's records, in ONTO's order (comments and blank lines too);
 *       records only LOCAL has are appended in LOCAL's order.
 *   <li>A field only one side changed (against BASE) takes that side's value. A field both sides
 *       changed differently takes LOCAL's value (local wins under /etc: local password hashes,
 *       shells, homes are kept) and is reported, with two exceptions: the record's own numeric id
 *       always follows ONTO (ONTO's files are owned by it), and member lists are merged as sets
 *       (ONTO's members, plus those LOCAL added, minus those LOCAL removed).
 *   <li>A record LOCAL deleted is deleted (reported if ONTO changed it); a record ONTO deleted is
 *       deleted unless LOCAL changed it (then kept and reported).
 *   <li>A record only LOCAL has whose id ONTO uses for another name gets a free id: the highest
 *       free one in the system range 100..999 for a system id (below 1000), else the lowest free
 *       one from 1000 up (like {@code useradd}). A user whose private group got a new gid prefers
 *       the same number. Every changed id is returned as an {@link IdRemap} so the caller re-owns
 *       the local files.
 * </ul>
 *
 * <p>Pure functions over text; no I/O.
 */
final class AccountMerge {
  private AccountMerge() {}

  static final long SYSTEM_MIN = 100;
  static final long SYSTEM_MAX = 999;
  static final long NORMAL_MIN = 1000;
  static final long NORMAL_MAX = 59999;

  /** The four account files and the shape of their records. */
  enum Kind {
    PASSWD(
        "etc/passwd",
        "user",
        "uid",
        2,
        -1,
        "name",
        "password",
        "uid",
        "gid",
        "gecos",
        "home",
        "shell"),
    GROUP("etc/group", "group", "gid", 2, 3, "name", "password", "gid", "members"),
    SHADOW(
        "etc/shadow",
        "user",
        null,
        -1,
        -1,
        "name",
        "password",
        "lastchg",
        "min",
        "max",
        "warn",
        "inactive",
        "expire",
        "reserved"),
    GSHADOW("etc/gshadow", "group", null, -1, 3, "name", "password", "admins", "members"),
    SUBUID("etc/subuid", "user", null, -1, -1, "name", "start", "count"),
    SUBGID("etc/subgid", "user", null, -1, -1, "name", "start", "count");

    final String path;
    final String noun;
    final String idKind;
    final int idField;
    final int membersField;
    final String[] fieldNames;

    Kind(
        String path,
        String noun,
        String idKind,
        int idField,
        int membersField,
        String... fieldNames) {
      this.path = path;
      this.noun = noun;
      this.idKind = idKind;
      this.idField = idField;
      this.membersField = membersField;
      this.fieldNames = fieldNames;
    }

    /** Subordinate id ranges ({@code name:start:count}): they follow upstream like ids. */
    boolean isRange() {
      return this == SUBUID || this == SUBGID;
    }

    /** Fields that are comma-separated name lists (gshadow's admins are one too). */
    boolean isList(int i) {
      return i == membersField || (this == GSHADOW && i == 2);
    }
  }

  /**
   * What a merge produced.
   *
   * @param text the merged file
   * @param conflicts every field or record where one side's change was dropped or overridden
   * @param remaps ids of local names that changed (to re-own files)
   */
  record Outcome(String text, List<Conflict> conflicts, List<IdRemap> remaps) {
    /** Old local id to new id. */
    Map<Long, Long> idMap() {
      Map<Long, Long> m = new HashMap<>();
      for (IdRemap r : remaps) {
        m.put(r.from(), r.to());
      }
      return m;
    }
  }

  /** A parsed file: records by name, and the lines in order (a record line is its name). */
  private record Table(Map<String, String[]> records, List<Line> lines) {}

  /** A line: a record (name non-null) or anything else kept verbatim. */
  private record Line(String name, String text) {}

  private static Table parse(String text, Kind kind) {
    Map<String, String[]> records = new LinkedHashMap<>();
    List<Line> lines = new ArrayList<>();
    if (text == null) {
      return new Table(records, lines);
    }
    String body = text.endsWith("\n") ? text.substring(0, text.length() - 1) : text;
    for (String line : body.isEmpty() ? new String[0] : body.split("\n", -1)) {
      String name = line.indexOf(':') > 0 && !line.startsWith("#") ? line.split(":", 2)[0] : null;
      if (name == null || records.containsKey(name)) {
        lines.add(new Line(null, line)); // comments, blanks, duplicate names: kept as they are
        continue;
      }
      String[] f = line.split(":", -1);
      if (f.length < kind.fieldNames.length) {
        f = Arrays.copyOf(f, kind.fieldNames.length);
        for (int i = 0; i < f.length; i++) {
          f[i] = f[i] == null ? "" : f[i];
        }
      }
      records.put(name, f);
      lines.add(new Line(name, null));
    }
    return new Table(records, lines);
  }

  private static String field(String[] r, int i) {
    return r == null || i >= r.length ? null : r[i];
  }

  /**
   * Merges one account file.
   *
   * @param base the file in the snapshot the local changes were made over (null if absent)
   * @param local the file with the local changes
   * @param onto the file in the new snapshot (null if absent)
   * @param gidRemap for {@link Kind#PASSWD}: local gid to new gid from the group merge, applied to
   *     primary groups that come from the local side
   */
  static Outcome merge(
      Kind kind, String base, String local, String onto, Map<Long, Long> gidRemap) {
    Table b = parse(base, kind);
    Table l = parse(local, kind);
    Table o = parse(onto, kind);
    String path = "/" + kind.path;
    List<Conflict> conflicts = new ArrayList<>();
    List<IdRemap> remaps = new ArrayList<>();
    Map<String, String[]> out = new LinkedHashMap<>();
    List<Line> lines = new ArrayList<>();
    // names whose record comes only from the local side: their id may clash with ONTO's
    List<String> localOnly = new ArrayList<>();
    // users whose primary gid equals their uid (a user-private group): keep them equal if we can
    Map<String, Boolean> privateGroup = new HashMap<>();

    for (Line line : o.lines()) {
      if (line.name() == null) {
        lines.add(line);
        continue;
      }
      String n = line.name();
      String[] or = o.records().get(n);
      String[] lr = l.records().get(n);
      String[] br = b.records().get(n);
      if (lr == null) {
        if (br == null) {
          out.put(n, or); // added upstream
          lines.add(line);
        } else if (!Arrays.equals(or, br)) {
          conflicts.add(
              new Conflict(
                  path,
                  "account-merge",
                  "local",
                  kind.noun + " " + n + " deleted locally and changed upstream: stays deleted"));
        }
        // else deleted locally only: stays deleted
        continue;
      }
      String[] merged = new String[Math.max(or.length, lr.length)];
      List<String> both = new ArrayList<>();
      for (int i = 0; i < merged.length; i++) {
        String ov = field(or, i);
        String lv = field(lr, i);
        String bv = field(br, i);
        if (kind == Kind.PASSWD && i == 3 && lv != null) {
          lv = remapped(lv, gidRemap); // local's primary group, in the merged group file's ids
        }
        if (ov == null || lv == null) {
          merged[i] = ov != null ? ov : lv;
        } else if (ov.equals(lv)) {
          merged[i] = ov;
        } else if (kind.isRange() && i >= 1) {
          merged[i] = ov; // ONTO's processes may already use its range
          both.add(kind.fieldNames[i] + " (upstream's kept)");
        } else if (kind.isList(i)) {
          merged[i] = mergeList(bv, lv, ov);
        } else if (i == kind.idField) {
          merged[i] = ov;
          long from = parseId(lv);
          long to = parseId(ov);
          if (from >= 0 && to >= 0) {
            remaps.add(new IdRemap(kind.idKind, n, from, to, 0));
            conflicts.add(
                new Conflict(
                    path,
                    "id-remap",
                    "upstream",
                    kind.noun
                        + " "
                        + n
                        + " has "
                        + kind.idKind
                        + " "
                        + to
                        + " upstream and "
                        + from
                        + " locally: upstream's id kept, local files re-owned"));
          }
        } else if (bv != null && lv.equals(bv)) {
          merged[i] = ov; // changed upstream only
        } else if (bv != null && ov.equals(bv)) {
          merged[i] = lv; // changed locally only
        } else {
          merged[i] = lv; // both changed: local wins under /etc
          both.add(kind.fieldNames.length > i ? kind.fieldNames[i] : "field " + (i + 1));
        }
      }
      if (!both.isEmpty()) {
        conflicts.add(
            new Conflict(
                path,
                "account-merge",
                "local",
                kind.noun
                    + " "
                    + n
                    + ": "
                    + String.join(", ", both)
                    + " changed on both sides; "
                    + (kind.isRange() ? "upstream's range kept" : "local value kept")));
      }
      out.put(n, merged);
      lines.add(line);
    }

    for (Line line : l.lines()) {
      String n = line.name();
      if (n == null || o.records().containsKey(n)) {
        continue;
      }
      String[] lr = l.records().get(n).clone();
      String[] br = b.records().get(n);
      if (br != null) {
        if (Arrays.equals(lr, br)) {
          continue; // deleted upstream, untouched locally: follows upstream
        }
        conflicts.add(
            new Conflict(
                path,
                "account-merge",
                "local",
                kind.noun + " " + n + " deleted upstream but changed locally: local record kept"));
      }
      if (kind == Kind.PASSWD) {
        privateGroup.put(n, parseId(lr[3]) == parseId(lr[2]));
        lr[3] = remapped(lr[3], gidRemap);
      }
      out.put(n, lr);
      lines.add(line);
      localOnly.add(n);
    }

    if (kind.idField >= 0) {
      Set<Long> used = new HashSet<>();
      for (Table t : List.of(b, l, o)) {
        for (String[] r : t.records().values()) {
          used.add(parseId(field(r, kind.idField)));
        }
      }
      Map<Long, String> owner = new HashMap<>();
      for (Map.Entry<String, String[]> e : out.entrySet()) {
        if (!localOnly.contains(e.getKey())) {
          owner.putIfAbsent(parseId(field(e.getValue(), kind.idField)), e.getKey());
        }
      }
      for (String n : localOnly) {
        String[] r = out.get(n);
        long id = parseId(r[kind.idField]);
        String other = owner.get(id);
        if (id < 0 || other == null || other.equals(n)) {
          owner.putIfAbsent(id, n);
          continue;
        }
        long preferred = privateGroup.getOrDefault(n, false) ? parseId(r[3]) : -1;
        long to = freeId(id, preferred, used);
        used.add(to);
        r[kind.idField] = Long.toString(to);
        owner.put(to, n);
        remaps.add(new IdRemap(kind.idKind, n, id, to, 0));
        conflicts.add(
            new Conflict(
                path,
                "id-remap",
                "upstream",
                "local "
                    + kind.noun
                    + " "
                    + n
                    + " had "
                    + kind.idKind
                    + " "
                    + id
                    + ", which upstream gives to "
                    + other
                    + ": "
                    + n
                    + " is now "
                    + kind.idKind
                    + " "
                    + to
                    + ", local files re-owned"));
      }
    }

    if (kind.isRange()) {
      moveOverlappingRanges(path, out, localOnly, conflicts);
    }

    StringBuilder sb = new StringBuilder();
    for (Line line : lines) {
      if (line.name() == null) {
        sb.append(line.text()).append('\n');
      } else if (out.containsKey(line.name())) {
        sb.append(String.join(":", out.get(line.name()))).append('\n');
      }
    }
    return new Outcome(sb.toString(), conflicts, remaps);
  }

  static final long SUBID_MIN = 100000;

  /**
   * Gives every local-only subordinate range that overlaps another range the lowest free start from
   * {@link #SUBID_MIN} up (as {@code useradd} allocates them).
   */
  private static void moveOverlappingRanges(
      String path, Map<String, String[]> out, List<String> localOnly, List<Conflict> conflicts) {
    List<long[]> taken = new ArrayList<>();
    for (Map.Entry<String, String[]> e : out.entrySet()) {
      long start = parseId(field(e.getValue(), 1));
      long count = parseId(field(e.getValue(), 2));
      if (!localOnly.contains(e.getKey()) && start >= 0 && count > 0) {
        taken.add(new long[] {start, start + count});
      }
    }
    // first the local ranges that fit where they are, so moving another cannot displace them
    List<String> clashing = new ArrayList<>();
    for (String n : localOnly) {
      long start = parseId(field(out.get(n), 1));
      long count = parseId(field(out.get(n), 2));
      if (start >= 0 && count > 0 && overlaps(taken, start, count)) {
        clashing.add(n);
      } else if (start >= 0 && count > 0) {
        taken.add(new long[] {start, start + count});
      }
    }
    for (String n : clashing) {
      String[] r = out.get(n);
      long start = parseId(field(r, 1));
      long count = parseId(field(r, 2));
      long to = SUBID_MIN;
      while (overlaps(taken, to, count)) {
        long next = to;
        for (long[] t : taken) {
          if (t[0] < to + count && to < t[1]) {
            next = Math.max(next, t[1]);
          }
        }
        to = next;
      }
      r[1] = Long.toString(to);
      conflicts.add(
          new Conflict(
              path,
              "id-remap",
              "upstream",
              "local user "
                  + n
                  + " had the subordinate range "
                  + start
                  + "+"
                  + count
                  + ", which overlaps another user's: now "
                  + to
                  + "+"
                  + count
                  + " (files owned by the old range are not re-owned)"));
      taken.add(new long[] {to, to + count});
    }
  }

  private static boolean overlaps(List<long[]> taken, long start, long count) {
    for (long[] t : taken) {
      if (t[0] < start + count && start < t[1]) {
        return true;
      }
    }
    return false;
  }

  /** ONTO's list, plus names LOCAL added, minus names LOCAL removed (both against BASE). */
  static String mergeList(String base, String local, String onto) {
    Set<String> b = names(base);
    Set<String> l = names(local);
    Set<String> out = names(onto);
    for (String m : l) {
      if (!b.contains(m)) {
        out.add(m);
      }
    }
    for (String m : b) {
      if (!l.contains(m)) {
        out.remove(m);
      }
    }
    return String.join(",", out);
  }

  private static Set<String> names(String list) {
    Set<String> s = new LinkedHashSet<>();
    if (list != null) {
      for (String m : list.split(",")) {
        if (!m.isBlank()) {
          s.add(m.strip());
        }
      }
    }
    return s;
  }

  private static String remapped(String id, Map<Long, Long> map) {
    long v = parseId(id);
    Long to = map.get(v);
    return to == null ? id : Long.toString(to);
  }

  static long parseId(String s) {
    if (s == null || s.isEmpty() || s.length() > 10) {
      return -1;
    }
    for (int i = 0; i < s.length(); i++) {
      if (s.charAt(i) < '0' || s.charAt(i) > '9') {
        return -1;
      }
    }
    return Long.parseLong(s);
  }

  /**
   * A free id in the range of {@code old}: system ids count down from 999 like {@code useradd
   * --system}, others count up from 1000. {@code preferred} wins when it is free and in range.
   */
  static long freeId(long old, long preferred, Set<Long> used) {
    boolean system = old < NORMAL_MIN;
    long lo = system ? SYSTEM_MIN : NORMAL_MIN;
    long hi = system ? SYSTEM_MAX : NORMAL_MAX;
    if (preferred >= lo && preferred <= hi && !used.contains(preferred)) {
      return preferred;
    }
    if (system) {
      for (long i = hi; i >= lo; i--) {
        if (!used.contains(i)) {
          return i;
        }
      }
    } else {
      for (long i = lo; i <= hi; i++) {
        if (!used.contains(i)) {
          return i;
        }
      }
    }
    throw new org.osfarm.core.InvalidInputException(
        "no free " + (system ? "system" : "normal") + " id in " + lo + ".." + hi);
  }
}
