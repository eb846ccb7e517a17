// layout.js — turns a trace and the set of opened blocks into positioned boxes and edges. PURE: no DOM, no
// globals; the same inputs give the same scene. The U skeleton is placed by our own rules from the trace's
// block map (stage, level): the down stage descends on the left one row per resolution level, the middle block
// sits at the bottom, the up stage climbs back on the right, each up row level with its down row.
// Inside an opened block the children are drawn as a top-to-bottom data flow in execution order, with the
// operations the forward performs between them (residual adds, the time embedding, reshapes, attention).
//
// A memo ({boxes: Map, nextId}) may be passed in and kept by the caller for one trace: the layout of any subtree
// whose open/closed state did not change is reused as the same object, so a toggle only re-lays the opened
// block's ancestors and the renderer can skip every unchanged subtree by identity.
//
// The work is split by concern: trace-index.js (lookups and numbers), cards.js (card text and size), flows.js (what
// an opened block shows), block-geometry.js (one box), u-geometry.js (the U). This module is their one door.

export { indexTrace, metricOf, barFraction, overlayValue, overlayScale } from './trace-index.js';
export { cardLines, fittedCardLines } from './cards.js';
export { flowOf, expandablePaths, pathToOpen } from './flows.js';
export { layoutBox, createMemo } from './block-geometry.js';
export { layoutScene, alignScenes, boxRect, counterpartOf } from './u-geometry.js';
