package org.osfarm.catalog;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Reads the installed packages from a dpkg status file (deb822 paragraphs). */
final class DpkgStatus {
  private DpkgStatus() {}

  /** Packages whose status is "install ok installed" (or half-configured and similar states). */
  static List<PackageInfo> parse(InputStream in) throws IOException {
    List<PackageInfo> out = new ArrayList<>();
    BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
    Map<String, String> para = new HashMap<>();
    String last = null;
    for (String line = r.readLine(); ; line = r.readLine()) {
      if (line == null || line.isEmpty()) {
        if (!para.isEmpty()) {
          PackageInfo p = toPackage(para);
          if (p != null) {
            out.add(p);
          }
          para.clear();
        }
        last = null;
        if (line == null) {
          break;
        }
        continue;
      }
      if (line.charAt(0) == ' ' || line.charAt(0) == '\t') {
        continue; // continuation of a multi-line field (Description, Conffiles): not needed
      }
      int colon = line.indexOf(':');
      if (colon <= 0) {
        continue;
      }
      last = line.substring(0, colon);
      para.put(last, line.substring(colon + 1).trim());
    }
    return out;
  }

  private static PackageInfo toPackage(Map<String, String> p) {
    String name = p.get("Package");
    String version = p.get("Version");
    String status = p.getOrDefault("Status", "");
    if (name == null || version == null) {
      return null;
    }
    String[] st = status.split("\\s+");
    String state = st.length == 3 ? st[2] : "";
    if (state.equals("not-installed") || state.equals("config-files")) {
      return null;
    }
    String arch = p.getOrDefault("Architecture", "");
    String source = name;
    String sourceVersion = version;
    String src = p.get("Source");
    if (src != null && !src.isBlank()) {
      int paren = src.indexOf('(');
      if (paren > 0) {
        source = src.substring(0, paren).trim();
        sourceVersion = src.substring(paren + 1, src.indexOf(')', paren)).trim();
      } else {
        source = src.trim();
      }
    }
    return new PackageInfo(name, version, arch, source, sourceVersion);
  }
}
