import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../agent/progress/progress.js';

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  return { stream: pt as unknown as NodeJS.WriteStream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('progress', () => {
  it('writes plain lines, not carriage returns, when the stream is not a terminal', () => {
    const out = capture();
    const p = createProgress({ label: 'replay x.csv', total: 200, unit: 'rows', stream: out.stream, lineIntervalS: 0 });
    p.update(50);
    p.update(100, '2 alerts');
    p.finish();
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^replay x\.csv: 100\/200 rows \(50\.0%\), \d+ rows\/s, [\d.]+ s, 2 alerts$/);
    expect(lines[2]).toMatch(/^replay x\.csv: done, 100\/200 rows/);
    expect(out.text()).not.toContain('\r');
  });

  it('holds plain lines back to one per interval', () => {
    const out = capture();
    const p = createProgress({ label: 'drain', unit: 'batches', stream: out.stream, lineIntervalS: 3600 });
    for (let i = 0; i < 1000; i++) p.update(i);
    p.finish();
    expect(out.text().trim().split('\n')).toEqual([expect.stringMatching(/^drain: done, 999 batches/)]);
  });
});
