/** The MIME type of a library node dragged onto the canvas; the data is the node type id. */
export const NODE_DRAG_TYPE = 'application/x-supir-node';
