"""What several pages draw or share: the pickers, the result and what-if panels, the
box-drawing surface, the presenter stepper, the shared choices and the address bar."""
