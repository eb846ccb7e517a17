// markdown.js — the little Markdown a lesson's text is written in, drawn as DOM nodes (text goes in through
// textContent, never innerHTML: a lesson from a URL is someone else's text). Paragraphs (blank lines), "- " lists,
// **bold**, *italic*, `code` and [links](https://…); anything else stays as it was typed.

const INLINE = /(\*\*([^*]+)\*\*|\*([^*]+)\*|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\))/g;

/** A link's address, if it is one a lesson may point to (http(s) or a relative address; no javascript:). */
function safeHref(href) {
  return /^(https?:\/\/|#|\.{0,2}\/|[\w-]+(\.[\w-]+)*(\/|$|\?|#))/i.test(href) && !/^\s*javascript:/i.test(href) ? href : null;
}

function inline(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    let el;
    if (m[2] != null) el = Object.assign(document.createElement('strong'), { textContent: m[2] });
    else if (m[3] != null) el = Object.assign(document.createElement('em'), { textContent: m[3] });
    else if (m[4] != null) el = Object.assign(document.createElement('code'), { textContent: m[4] });
    else {
      const href = safeHref(m[6]);
      el = href ? Object.assign(document.createElement('a'), { textContent: m[5], href, target: '_blank', rel: 'noopener' }) : document.createTextNode(m[0]);
    }
    out.push(el);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

/** Markdown text → a DocumentFragment of <p> and <ul> elements. */
export function renderMarkdown(text) {
  const frag = document.createDocumentFragment();
  for (const block of text.trim().split(/\n\s*\n/)) {
    const lines = block.split('\n');
    if (lines.every((l) => /^\s*[-*] /.test(l))) {
      const ul = document.createElement('ul');
      for (const l of lines) {
        const li = document.createElement('li');
        li.append(...inline(l.replace(/^\s*[-*] /, '')));
        ul.append(li);
      }
      frag.append(ul);
    } else {
      const p = document.createElement('p');
      p.append(...inline(lines.join(' ')));
      frag.append(p);
    }
  }
  return frag;
}
