// xterm.js's DOM renderer styles itself partly through <style> elements
// (its palette classes, cell sizes, scrollbar) and style="" attributes
// (24-bit colours), and the console's CSP (style-src 'self', no
// 'unsafe-inline') refuses both: the browser keeps the text but applies
// none of it. Rather than loosen the CSP for the whole console, this bridge
// moves exactly those styles into the CSSOM, which the CSP does not govern:
// each <style> element under the terminal becomes a constructed stylesheet
// adopted by the document (kept in step when xterm rewrites it and dropped
// when it goes), and a refused style attribute is applied through
// element.style. Only the terminal's own subtree is watched, and nothing
// here ever parses markup.

function isStyle(n) {
  return n && n.nodeType === 1 && n.tagName === 'STYLE';
}

/**
 * Starts bridging the styles xterm.js writes under `root`; returns a
 * function that stops it and removes the adopted sheets.
 */
export function bridgeStyles(root) {
  const sheets = new Map(); // <style> element -> its constructed sheet

  const adopt = el => {
    let sheet = sheets.get(el);
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheets.set(el, sheet);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }
    sheet.replaceSync(el.textContent || '');
  };

  const drop = el => {
    const sheet = sheets.get(el);
    if (!sheet) return;
    sheets.delete(el);
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter(s => s !== sheet);
  };

  // A refused style attribute is still in the DOM; applying it through the
  // CSSOM makes the serialised attribute equal to element.style, so the
  // mutation this causes finds nothing left to do.
  const applyAttr = el => {
    const want = el.getAttribute('style');
    if (want !== null && el.style.cssText !== want) el.style.cssText = want;
  };

  const added = n => {
    if (n.nodeType !== 1) return;
    if (isStyle(n)) { adopt(n); return; }
    if (n.hasAttribute('style')) applyAttr(n);
    for (const s of n.querySelectorAll('style')) adopt(s);
    for (const e of n.querySelectorAll('[style]')) applyAttr(e);
  };

  const removed = n => {
    if (n.nodeType !== 1) return;
    if (isStyle(n)) { drop(n); return; }
    for (const s of n.querySelectorAll('style')) drop(s);
  };

  const observer = new MutationObserver(records => {
    for (const r of records) {
      if (r.type === 'attributes') {
        applyAttr(r.target);
      } else if (r.type === 'characterData') {
        if (isStyle(r.target.parentNode)) adopt(r.target.parentNode);
      } else {
        // textContent on a <style> replaces its text node: a childList change.
        if (isStyle(r.target)) { if (r.target.isConnected) adopt(r.target); continue; }
        for (const n of r.removedNodes) removed(n);
        for (const n of r.addedNodes) added(n);
      }
    }
  });
  observer.observe(root, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['style'] });
  added(root);
  return () => {
    observer.disconnect();
    for (const el of [...sheets.keys()]) drop(el);
  };
}
