/**
 * Live status while the CLI waits, on stderr (stdout stays the command's output): a spinner
 * line redrawn in place on a terminal; plain lines, one per change, otherwise (logs, CI).
 */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Progress {
  private readonly tty = Boolean(process.stderr.isTTY);
  private text = '';
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;
  /** False while a log line is half written: the spinner waits for its end. */
  private atLineStart = true;
  private readonly started = Date.now();

  /** A new status; on a terminal the spinner shows it, elsewhere it is printed once. */
  update(text: string): void {
    if (text === this.text) return;
    this.text = text;
    if (!this.tty) {
      process.stderr.write(`${text}\n`);
      return;
    }
    this.timer ??= setInterval(() => this.draw(), 100).unref();
    this.draw();
  }

  /** Writes output (a log chunk) to stdout without the spinner line in it. */
  write(chunk: string): void {
    if (chunk === '') return;
    this.clear();
    process.stdout.write(chunk);
    this.atLineStart = chunk.endsWith('\n');
    this.draw();
  }

  /** Removes the spinner and prints a last line. */
  done(line?: string): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    if (line) process.stderr.write(`${line}\n`);
  }

  private draw(): void {
    if (!this.tty || !this.timer || !this.atLineStart || !this.text) return;
    const seconds = Math.floor((Date.now() - this.started) / 1000);
    this.frame = (this.frame + 1) % FRAMES.length;
    process.stderr.write(`\r\x1b[K${FRAMES[this.frame]} ${this.text} ${seconds}s`);
    this.drawn = true;
  }

  private clear(): void {
    if (this.tty && this.drawn) process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}
