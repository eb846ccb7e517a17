// glossary.js — the diagram's shorthand in plain words, in one place (issue 24: "8 heads × 40", "s2 p1", "⧺" are
// never explained where they appear). termsIn(text) finds the shorthand in a card's or an operation's text and
// says what each means; explainOnHover(svg) shows that where the reader points (a tooltip on the card or the
// operation, added when first pointed at, so a fully opened SDXL carries no thousands of <title>s) and gives it to
// screen readers as the focused card's description.

/** Each entry: a pattern in the drawn text, and what a match means. */
const GLOSSARY = [
  [/(\d+) heads × (\d+)/, (m) => `${m[0]}: ${m[1]} attention heads, ${m[2]} channels each`],
  [/(\d+)h×(\d+)/, (m) => `${m[0]}: ${m[1]} attention heads, ${m[2]} channels each`],
  [/\bs(\d+(?:×\d+)?) p(\d+(?:×\d+)?)/, (m) => `s${m[1]} p${m[2]}: stride ${m[1]}, padding ${m[2]}`],
  [/\bg(\d+)\b/, (m) => `g${m[1]}: the convolution in ${m[1]} groups`],
  [/(\d+) groups/, (m) => `${m[0]}: GroupNorm normalises the channels in ${m[1]} groups`],
  [/(\d+) → (\d+) ch/, (m) => `${m[0]}: ${m[1]} channels in, ${m[2]} out`],
  [/⧺/, () => '⧺: concatenate with the skip, channel after channel'],
  [/stride 2/, () => 'stride 2: the kernel moves 2 pixels at a time, halving height and width'],
  [/nearest ×2/, () => 'nearest ×2: every pixel repeated into a 2×2 square, doubling height and width'],
  [/Up ×2/, () => 'Up ×2: the block ends by doubling height and width'],
  [/Down ÷2/, () => 'Down ÷2: the block halves height and width'],
  [/\b\d+×\d+×\d+\b/, () => 'C×H×W: channels × height × width of the tensor (the batch left out)'],
  [/^\+$/, () => '+: added element by element'],
  [/^×$/, () => '×: multiplied element by element'],
];

/** What the shorthand in `text` means, one sentence per term, in the glossary's order. */
export function termsIn(text) {
  const out = [];
  for (const [re, say] of GLOSSARY) {
    const m = re.exec(text);
    if (m) out.push(say(m));
  }
  return out;
}

/** The drawn text a pointer target stands for: a card's lines, an operation's symbol and label. */
function textOf(target) {
  const card = target.closest('.card');
  if (card) return [...card.querySelectorAll('text')].map((t) => t.textContent).join('\n');
  if (target.hasAttribute('data-op')) {
    // An operation's symbol (and label) are the texts drawn just after its shape.
    const words = [];
    for (let t = target.nextElementSibling; t?.tagName === 'text' && words.length < 2; t = t.nextElementSibling) {
      words.push(t.textContent);
    }
    return words.join('\n');
  }
  return '';
}

/** Tooltips on what the reader points at, descriptions on what the keyboard focuses, in `svg` (diagram.js). */
export function explainOnHover(svg) {
  svg.addEventListener('pointerover', (event) => {
    const target = event.target;
    if (target.__glossed || !(target instanceof SVGGraphicsElement)) return;
    target.__glossed = true;
    // Lines of shorthand, matched one per line: a card's title and its shape line are different terms.
    const terms = [...new Set(textOf(target).split('\n').flatMap(termsIn))];
    if (!terms.length) return;
    // A big block's card has a tooltip of its own (diagram-card.js): the glossary comes after it.
    const own = target.closest('.card')?.querySelector(':scope > title')?.textContent;
    const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    title.textContent = [own, ...terms].filter(Boolean).join('\n');
    target.append(title);
  });
  svg.addEventListener('focusin', (event) => {
    const card = event.target.closest?.('.card');
    if (!card) return;
    // Every time: a card keeps its element through redraws, not its text (the Names switch relabels it).
    const terms = [...new Set(textOf(card).split('\n').flatMap(termsIn))];
    if (terms.length) card.setAttribute('aria-description', terms.join('. '));
    else card.removeAttribute('aria-description');
  });
}
