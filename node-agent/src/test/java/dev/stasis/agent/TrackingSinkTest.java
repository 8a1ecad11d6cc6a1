package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.ImageSink;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

class TrackingSinkTest {

  /** A sink that only records what the tracking sink hands down to it. */
  private static final class Recording implements ImageSink {
    BooleanSupplier cancelWhen;
    boolean committed;

    @Override
    public WritableByteChannel create(String name) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void cancelWhen(BooleanSupplier cancelled) {
      this.cancelWhen = cancelled;
    }

    @Override
    public void commit() {
      committed = true;
    }

    @Override
    public void abort() {}

    @Override
    public String describe() {
      return "recording";
    }

    @Override
    public void close() {}
  }

  @Test
  void theCancellationReachesTheStoreSoThatItsOwnCommitWorkStopsToo() throws Exception {
    AtomicBoolean cancelled = new AtomicBoolean();
    Recording inner = new Recording();
    TrackingSink sink = new TrackingSink(inner, cancelled::get, () -> {});
    // the store's commit (shipping spooled pages) polls the same condition as the engine's writes
    assertNotNull(inner.cancelWhen);
    assertFalse(inner.cancelWhen.getAsBoolean());
    cancelled.set(true);
    assertTrue(inner.cancelWhen.getAsBoolean());
    // and a commit that starts after the cancellation does not start at all
    assertThrows(TrackingSink.CancelledException.class, sink::commit);
    assertFalse(inner.committed);
  }
}
