package org.osfarm.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.ObjectCodec;
import org.osfarm.core.Progress;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.RefConflictException;
import org.osfarm.core.RefDatabase;
import org.osfarm.core.RefUpdate;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.store.ObjectStore;
import org.osfarm.core.store.ObjectType;

/**
 * Pull and push of snapshots between repositories over the object protocol, sending only the
 * objects the receiver lacks.
 *
 * <p>Algorithm (both directions): walk the snapshot's trees top-down, level by level; a tree the
 * receiver already has is skipped with its whole subtree (the store invariant of {@link
 * PackReceiver}: nothing that refers to other objects is stored before them). The file contents of
 * the trees it lacks are checked in batches; only missing ones are sent, as streamed zstd packs,
 * several batches in flight. Objects are stored leaves first (blobs, chunk lists, trees deepest
 * first, snapshot last), flushed every {@link PackReceiver#FLUSH_BYTES}, so an interrupted transfer
 * keeps every verified object and the next run sends only the rest. Every received object is hashed
 * and must be one that was asked for, of the expected type. The ref moves last, by
 * compare-and-swap. Only the snapshot is transferred, not its parents (history stays where it is).
 *
 * <p>Thread-safe (no shared state); each call uses a few worker threads.
 */
public final class ObjectTransfer {
  /** Target bytes per pack request. */
  static final long BATCH_BYTES = 16L << 20;

  /** Pack requests in flight during a pull. */
  static final int IN_FLIGHT = 3;

  private ObjectTransfer() {}

  /**
   * Copies snapshot {@code remoteRef} (a ref name or a full snapshot id) of the repository served
   * at {@code remote} into {@code local}, and points {@code localRef} at it.
   *
   * @throws PeerDataException if the peer sends anything that does not verify; verified objects
   *     stay, nothing else does, and the ref does not move
   * @throws RefConflictException if {@code localRef} moved during the pull
   * @throws org.osfarm.core.NotFoundException if the remote has no such ref
   */
  public static TransferResult pull(
      Repository local, URI remote, String remoteRef, String localRef, ProgressListener l) {
    return pull(local, remote, null, remoteRef, localRef, l);
  }

  /**
   * {@link #pull(Repository, URI, String, String, ProgressListener)} sending {@code token} as
   * {@code Authorization: Bearer} (null: none), for a service that closes reading.
   */
  public static TransferResult pull(
      Repository local,
      URI remote,
      String token,
      String remoteRef,
      String localRef,
      ProgressListener l) {
    return pull(local, remote, token, remoteRef, localRef, l, PackReceiver.FLUSH_BYTES);
  }

  /** A pull that makes received objects durable every {@code flushBytes} (tests: small ones). */
  static TransferResult pull(
      Repository local,
      URI remote,
      String token,
      String remoteRef,
      String localRef,
      ProgressListener l,
      long flushBytes) {
    RefDatabase.validateName(localRef);
    long t0 = System.nanoTime();
    RemoteRepository rr = new RemoteRepository(remote, token);
    Digest snap =
        Digest.isHex(remoteRef)
            ? Digest.fromHex(remoteRef)
            : rr.ref(remoteRef)
                .orElseThrow(
                    () ->
                        new org.osfarm.core.NotFoundException(
                            "remote " + rr.base() + " has no ref '" + remoteRef + "'"));
    Puller p = new Puller(local, rr, l, flushBytes);
    try (Repository.Lease lease = local.holdSharedLock();
        ObjectStore.Inserter ins = local.store().newInserter()) {
      local.store().refresh();
      p.ins = ins;
      if (!local.store().contains(snap)) {
        p.run(snap);
      }
      Optional<Digest> old = local.refs().get(localRef);
      RefUpdate u =
          local
              .refs()
              .compareAndSet(
                  localRef, old.orElse(null), snap, "pull: " + rr.base() + " " + remoteRef);
      if (u == RefUpdate.REJECTED_CHANGED) {
        throw new RefConflictException(
            "ref '" + localRef + "' changed during the pull; snapshot " + snap + " is stored");
      }
      return new TransferResult(
          snap,
          u,
          p.objects.get(),
          p.bytes.get(),
          p.present,
          p.presentBytes,
          rr.wireBytes(),
          (System.nanoTime() - t0) / 1e9);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The receiving side of a pull. */
  private static final class Puller {
    final Repository local;
    final ObjectStore store;
    final RemoteRepository rr;
    final ProgressListener l;
    final long flushBytes;
    ObjectStore.Inserter ins;
    final ReentrantReadWriteLock flushLock = new ReentrantReadWriteLock();
    final AtomicLong objects = new AtomicLong();
    final AtomicLong bytes = new AtomicLong();
    final AtomicLong sinceFlush = new AtomicLong();
    long present;
    long presentBytes;
    long totalBytes;

    Puller(Repository local, RemoteRepository rr, ProgressListener l, long flushBytes) {
      this.local = local;
      this.store = local.store();
      this.rr = rr;
      this.l = l;
      this.flushBytes = flushBytes;
    }

    void run(Digest snapId) throws IOException {
      byte[] sb = fetch(List.of(snapId), ObjectType.SNAPSHOT).get(snapId);
      local.keys().checkIncoming(sb); // require-signatures: refuse before fetching anything else
      Snapshot snap = ObjectCodec.decodeSnapshot(snapId, sb);
      List<Map<Digest, byte[]>> levels = new ArrayList<>();
      Map<Digest, Integer> blobs = new LinkedHashMap<>();
      Map<Digest, Integer> chunkLists = new LinkedHashMap<>();
      Set<Digest> seenTrees = new HashSet<>();
      Set<Digest> seenContent = new HashSet<>();
      List<Digest> level = new ArrayList<>();
      if (!store.contains(snap.tree())) {
        level.add(snap.tree());
      }
      while (!level.isEmpty()) {
        l.progress(new Progress("reading trees", objects.get(), bytes.get(), -1, 0));
        Map<Digest, byte[]> trees = fetch(level, ObjectType.TREE);
        levels.add(trees);
        List<Digest> next = new ArrayList<>();
        for (Map.Entry<Digest, byte[]> t : trees.entrySet()) {
          for (Entry e : ObjectCodec.decodeTree(t.getKey(), t.getValue())) {
            if (e.type() == EntryType.DIR) {
              if (seenTrees.add(e.content()) && !store.contains(e.content())) {
                next.add(e.content());
              }
            } else if (e.type() == EntryType.FILE && e.content() != null) {
              if (!seenContent.add(e.content())) {
                continue;
              }
              if (store.contains(e.content())) {
                present++;
                presentBytes += e.size();
              } else if (e.chunked()) {
                chunkLists.put(e.content(), 0);
              } else {
                blobs.put(e.content(), (int) e.size());
              }
            }
          }
        }
        level = next;
      }
      Map<Digest, byte[]> lists = fetch(new ArrayList<>(chunkLists.keySet()), ObjectType.CHUNKLIST);
      for (Map.Entry<Digest, byte[]> c : lists.entrySet()) {
        for (ObjectCodec.Chunk ch :
            ObjectCodec.decodeChunkList(c.getKey(), c.getValue()).chunks()) {
          if (!seenContent.add(ch.id())) {
            continue;
          }
          if (store.contains(ch.id())) {
            present++;
            presentBytes += ch.length();
          } else {
            blobs.put(ch.id(), ch.length());
          }
        }
      }
      for (int v : blobs.values()) {
        totalBytes += v;
      }
      fetchBlobs(blobs);
      // Parents after children: the store invariant.
      for (Map.Entry<Digest, byte[]> c : lists.entrySet()) {
        insert(ObjectType.CHUNKLIST, c.getKey(), c.getValue());
      }
      for (Map.Entry<Digest, byte[]> t : childrenFirst(snap.tree(), levels).entrySet()) {
        insert(ObjectType.TREE, t.getKey(), t.getValue());
      }
      insert(ObjectType.SNAPSHOT, snapId, sb);
      ins.flush();
    }

    private void insert(ObjectType type, Digest id, byte[] data) {
      flushLock.readLock().lock();
      try {
        ins.insert(type, id, data, 0, data.length);
      } finally {
        flushLock.readLock().unlock();
      }
      objects.incrementAndGet();
      bytes.addAndGet(data.length);
      if (sinceFlush.addAndGet(data.length) >= flushBytes) {
        flushLock.writeLock().lock();
        try {
          if (sinceFlush.get() >= flushBytes) {
            ins.flush();
            sinceFlush.set(0);
          }
        } finally {
          flushLock.writeLock().unlock();
        }
      }
    }

    private void fetchBlobs(Map<Digest, Integer> blobs) throws IOException {
      List<List<Digest>> batches = new ArrayList<>();
      List<Digest> cur = new ArrayList<>();
      long curBytes = 0;
      for (Map.Entry<Digest, Integer> b : blobs.entrySet()) {
        cur.add(b.getKey());
        curBytes += b.getValue();
        if (curBytes >= BATCH_BYTES || cur.size() >= ObjectProtocol.MAX_BATCH) {
          batches.add(cur);
          cur = new ArrayList<>();
          curBytes = 0;
        }
      }
      if (!cur.isEmpty()) {
        batches.add(cur);
      }
      try (ExecutorService ex = Executors.newFixedThreadPool(IN_FLIGHT)) {
        List<Future<?>> fs = new ArrayList<>();
        for (List<Digest> batch : batches) {
          fs.add(
              ex.submit(
                  () -> {
                    receive(
                        batch, ObjectType.BLOB, (id, data) -> insert(ObjectType.BLOB, id, data));
                    l.progress(
                        new Progress(
                            "fetching", objects.get(), bytes.get(), totalBytes, bytes.get()));
                    return null;
                  }));
        }
        for (Future<?> f : fs) {
          try {
            f.get();
          } catch (java.util.concurrent.ExecutionException e) {
            fs.forEach(x -> x.cancel(true));
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) {
              throw re;
            }
            if (c instanceof IOException io) {
              throw io;
            }
            throw new TransferException("pull failed: " + c, c);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TransferException("interrupted", e);
          }
        }
      }
    }

    /** Fetches objects into memory (trees, chunk lists, the snapshot), verified. */
    private Map<Digest, byte[]> fetch(List<Digest> ids, ObjectType type) throws IOException {
      Map<Digest, byte[]> out = new LinkedHashMap<>();
      for (int i = 0; i < ids.size(); i += ObjectProtocol.MAX_BATCH) {
        receive(ids.subList(i, Math.min(ids.size(), i + ObjectProtocol.MAX_BATCH)), type, out::put);
      }
      return out;
    }

    interface Sink {
      void accept(Digest id, byte[] data);
    }

    /** Requests one pack and checks it holds exactly the asked-for objects, each verified. */
    private void receive(List<Digest> ids, ObjectType type, Sink sink) throws IOException {
      if (ids.isEmpty()) {
        return;
      }
      Set<Digest> want = new HashSet<>(ids);
      try (InputStream in = rr.pack(ids);
          ObjectPack.Reader r = new ObjectPack.Reader(in)) {
        ObjectPack.Item it;
        while ((it = r.next()) != null) {
          Digest id = PackReceiver.verifyHash(it);
          if (!want.remove(id)) {
            throw new PeerDataException(
                "peer sent object " + id.hex() + ", which was not asked for");
          }
          if (it.type() != type) {
            throw new PeerDataException(
                "peer sent object " + id.hex() + " as a " + it.type() + ", expected a " + type);
          }
          if (type == ObjectType.TREE) {
            ObjectCodec.decodeTree(id, it.data()); // reject undecodable trees before use
          }
          sink.accept(id, it.data());
        }
      } catch (org.osfarm.core.CorruptObjectException e) {
        throw new PeerDataException("peer sent an undecodable " + type + ": " + e.getMessage());
      } catch (TransferException e) {
        throw e;
      } catch (IOException e) {
        throw new PeerDataException("object pack from " + rr.base() + " broke off: " + e);
      }
      if (!want.isEmpty()) {
        throw new PeerDataException(
            "peer did not send " + want.size() + " of the " + ids.size() + " objects asked for");
      }
    }
  }

  /**
   * Copies snapshot {@code ref} of {@code local} to the repository served at {@code remote} (which
   * must run with push allowed) and points its {@code remoteRef} at it, sending only the objects it
   * lacks.
   *
   * @throws RefConflictException if the remote ref moved during the push (the objects stay there)
   */
  public static TransferResult push(
      Repository local, String ref, URI remote, String remoteRef, ProgressListener l) {
    return push(local, ref, remote, null, remoteRef, l);
  }

  /**
   * {@link #push(Repository, String, URI, String, ProgressListener)} sending {@code token} as
   * {@code Authorization: Bearer} (null: none): {@code osfarm serve} needs one to receive objects
   * and move refs.
   */
  public static TransferResult push(
      Repository local,
      String ref,
      URI remote,
      String token,
      String remoteRef,
      ProgressListener l) {
    RefDatabase.validateName(remoteRef);
    long t0 = System.nanoTime();
    RemoteRepository rr = new RemoteRepository(remote, token);
    Digest snapId = local.resolve(ref);
    Optional<Digest> remoteOld = rr.ref(remoteRef);
    long[] counts = new long[4];
    try (ObjectStore.Reader rd = local.store().newReader()) {
      if (!rr.missing(List.of(snapId)).isEmpty()) {
        Snapshot snap = local.readSnapshot(snapId);
        final List<Map<Digest, byte[]>> levels = new ArrayList<>();
        Map<Digest, Integer> leafCandidates = new LinkedHashMap<>();
        Set<Digest> chunkedCandidates = new HashSet<>();
        Set<Digest> seenTrees = new HashSet<>();
        List<Digest> level = rr.missing(List.of(snap.tree()));
        while (!level.isEmpty()) {
          Map<Digest, byte[]> trees = new LinkedHashMap<>();
          List<Digest> children = new ArrayList<>();
          for (Digest t : level) {
            byte[] b = rd.read(t, ObjectType.TREE);
            trees.put(t, b);
            for (Entry e : ObjectCodec.decodeTree(t, b)) {
              if (e.type() == EntryType.DIR && seenTrees.add(e.content())) {
                children.add(e.content());
              } else if (e.type() == EntryType.FILE && e.content() != null) {
                leafCandidates.putIfAbsent(
                    e.content(), (int) Math.min(e.size(), Integer.MAX_VALUE));
                if (e.chunked()) {
                  chunkedCandidates.add(e.content());
                }
              }
            }
          }
          levels.add(trees);
          level = rr.missing(children);
        }
        Set<Digest> missingLeaves = new HashSet<>(rr.missing(leafCandidates.keySet()));
        List<Digest> blobs = new ArrayList<>();
        Map<Digest, byte[]> lists = new LinkedHashMap<>();
        Map<Digest, Integer> chunkCandidates = new LinkedHashMap<>();
        for (Map.Entry<Digest, Integer> c : leafCandidates.entrySet()) {
          if (!missingLeaves.contains(c.getKey())) {
            counts[2]++;
            counts[3] += c.getValue();
          } else if (chunkedCandidates.contains(c.getKey())) {
            byte[] b = rd.read(c.getKey(), ObjectType.CHUNKLIST);
            lists.put(c.getKey(), b);
            for (ObjectCodec.Chunk ch : ObjectCodec.decodeChunkList(c.getKey(), b).chunks()) {
              chunkCandidates.putIfAbsent(ch.id(), ch.length());
            }
          } else {
            blobs.add(c.getKey());
          }
        }
        Set<Digest> missingChunks = new HashSet<>(rr.missing(chunkCandidates.keySet()));
        for (Map.Entry<Digest, Integer> c : chunkCandidates.entrySet()) {
          if (missingChunks.contains(c.getKey())) {
            blobs.add(c.getKey());
          } else {
            counts[2]++;
            counts[3] += c.getValue();
          }
        }
        rr.receivePack(
            w -> {
              try (ObjectStore.Reader r2 = local.store().newReader()) {
                for (Digest b : blobs) {
                  send(w, ObjectType.BLOB, b, r2.read(b, ObjectType.BLOB), counts, l);
                }
              }
              for (Map.Entry<Digest, byte[]> c : lists.entrySet()) {
                send(w, ObjectType.CHUNKLIST, c.getKey(), c.getValue(), counts, l);
              }
              for (Map.Entry<Digest, byte[]> t : childrenFirst(snap.tree(), levels).entrySet()) {
                send(w, ObjectType.TREE, t.getKey(), t.getValue(), counts, l);
              }
              byte[] s = rd.read(snapId, ObjectType.SNAPSHOT);
              send(w, ObjectType.SNAPSHOT, snapId, s, counts, l);
            });
      }
    }
    RefUpdate u = rr.updateRef(remoteRef, remoteOld.orElse(null), snapId);
    if (u == RefUpdate.REJECTED_CHANGED) {
      throw new RefConflictException(
          "remote ref '" + remoteRef + "' changed during the push; push again");
    }
    return new TransferResult(
        snapId,
        u,
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        rr.wireBytes(),
        (System.nanoTime() - t0) / 1e9);
  }

  private static void send(
      ObjectPack.Writer w, ObjectType t, Digest id, byte[] b, long[] counts, ProgressListener l)
      throws IOException {
    w.write(t, id, b);
    counts[0]++;
    counts[1] += b.length;
    if ((counts[0] & 1023) == 0) {
      l.progress(new Progress("sending", counts[0], counts[1], -1, counts[1]));
    }
  }

  /**
   * The trees to store, ordered so that every tree comes after the trees it contains (a post-order
   * walk from the root: the same subtree may occur at several depths). Trees not in {@code levels}
   * are already on the receiving side.
   */
  static Map<Digest, byte[]> childrenFirst(Digest root, List<Map<Digest, byte[]>> levels) {
    Map<Digest, byte[]> all = new java.util.HashMap<>();
    levels.forEach(all::putAll);
    Map<Digest, byte[]> out = new LinkedHashMap<>();
    if (!all.containsKey(root)) {
      return out;
    }
    java.util.ArrayDeque<Object[]> stack = new java.util.ArrayDeque<>();
    Set<Digest> entered = new HashSet<>();
    stack.push(new Object[] {root, null});
    entered.add(root);
    while (!stack.isEmpty()) {
      Object[] top = stack.peek();
      Digest id = (Digest) top[0];
      @SuppressWarnings("unchecked")
      java.util.Iterator<Entry> it = (java.util.Iterator<Entry>) top[1];
      if (it == null) {
        it = ObjectCodec.decodeTree(id, all.get(id)).iterator();
        top[1] = it;
      }
      boolean descended = false;
      while (it.hasNext()) {
        Entry e = it.next();
        if (e.type() == EntryType.DIR && all.containsKey(e.content()) && entered.add(e.content())) {
          stack.push(new Object[] {e.content(), null});
          descended = true;
          break;
        }
      }
      if (!descended) {
        stack.pop();
        out.put(id, all.get(id));
      }
    }
    return out;
  }
}
